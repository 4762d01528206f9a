// `kiln tune apply`: the fastest correct candidate becomes a tuning record.
#include <set>

#include <fmt/format.h>

#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::tune {

std::vector<std::string> deployment_lines(const std::string& device, const std::vector<std::string>& flags) {
  std::string driver = device.substr(0, device.find(':'));
  if (flags.empty()) return {"deploy with the runtime's default options (nothing to set)"};
  std::vector<std::string> lines = {"deploy with: iree-run-module --device=" + device + " " + util::join(flags, " ")};
  std::vector<std::string> parsed, allocators;
  for (const auto& f : flags) {
    if (util::starts_with(f, "--device_allocator=")) {
      allocators.push_back(f.substr(19));
    } else {
      parsed.push_back("\"" + f + "\"");
    }
  }
  std::string py = "  Python: import iree.runtime as rt; ";
  if (!parsed.empty()) py += "rt.flags.parse_flags(" + util::join(parsed, ", ") + "); ";
  py += "device = rt.get_driver(\"" + (util::starts_with(driver, "local") ? std::string("local-task") : driver) +
        "\").create_default_device(" + (allocators.empty() ? "" : "allocators=[\"" + util::join(allocators, "\", \"") + "\"]") + ")";
  lines.push_back(py);
  if (!parsed.empty()) lines.push_back("  (parse_flags before the first driver is created)");
  return lines;
}

const Measurement* fastest(const Results& results, const Bundle& bundle) {
  std::set<std::string> programs;
  for (const auto& c : bundle.candidates) {
    if (c.executable.empty()) programs.insert(c.id);
  }
  const Measurement* best = nullptr;
  for (const auto& m : results.measurements) {
    if (m.status == "ok" && programs.count(m.id) && (!best || m.latency_ms < best->latency_ms)) best = &m;
  }
  return best;
}

Result<tuning::Record> apply(const fs::path& results_file, const fs::path& bundle_dir, tuning::Database& db) {
  Results results = KILN_TRY(read_results(results_file));
  fs::path dir = bundle_dir.empty() ? fs::absolute(results_file).parent_path() : bundle_dir;
  Bundle bundle = KILN_TRY(read_bundle(dir));
  if (KILN_TRY(bundle_digest(dir)) != results.bundle_digest) {
    return fail(Code::kInvalidArgument, fmt::format("{} does not match the bundle in {} (it measured another bundle); "
                                                    "give the bundle it came from with --bundle",
                                                    results_file.string(), dir.string()));
  }
  for (const auto& m : results.measurements) {
    bool known = false;
    for (const auto& c : bundle.candidates) known = known || c.id == m.id;
    if (!known) return fail(Code::kInvalidArgument, fmt::format("{} names candidate '{}', which the bundle does not have",
                                                                results_file.string(), m.id));
  }
  const Measurement* best = fastest(results, bundle);
  if (!best) return fail(Code::kFailedPrecondition, results_file.string() + " has no correct, measured candidate to apply");
  const Measurement* baseline = results.find("reference");
  const Candidate* winner = nullptr;
  for (const auto& c : bundle.candidates) {
    if (c.id == best->id) winner = &c;
  }

  tuning::Record record;
  record.id = {bundle.program_sha256, bundle.target_slug, bundle.iree_release, bundle.precision,
               bundle.invocation, bundle.options};
  record.program_name = bundle.program_name;
  record.target_spec = bundle.target_spec;
  record.device = results.device_name;
  record.candidate = winner->id;
  record.summary = winner->summary;
  record.compile_flags = winner->compile_flags;
  record.runtime_flags = winner->runtime_flags;
  for (const auto& [exe, s] : winner->dispatches) record.dispatches[exe] = s;
  record.latency_ms = best->latency_ms;
  record.baseline_ms = baseline && baseline->status == "ok" ? baseline->latency_ms : 0;
  record.measured_at = results.measured_at;
  std::vector<std::pair<std::string, std::string>> configs;
  for (const auto& [exe, rel] : winner->configs) configs.emplace_back(exe, KILN_TRY(util::read_file(dir / rel)));
  return db.put(std::move(record), configs);
}

}  // namespace kiln::tune
