#include "kiln/tune/dispatch_bundle.h"
#include "kiln/util/json.h"

#include <algorithm>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/time.h"

namespace kiln::tune {

using nlohmann::json;

Result<DispatchBundle> prepare_dispatch_bundle(const fs::path& model, const mlir::ModuleInfo& module,
                                               const target::Target& target, const compile::Options& options,
                                               const fs::path& output, const toolchain::Toolchain& tools,
                                               compile::Executor& executor, const tuning::Database* tuning) {
  std::error_code ec;
  if (fs::exists(output, ec) && !fs::is_empty(output, ec)) {
    return fail(Code::kInvalidArgument, output.string() + " exists and is not empty; give a new folder");
  }
  fs::path parent = fs::absolute(output).parent_path();
  fs::create_directories(parent, ec);
  auto stage_dir = KILN_TRY(util::TempDir::create(parent, ".kiln-staging-profile-"));
  fs::path stage = stage_dir.path();
  fs::create_directories(stage / "program", ec);
  fs::create_directories(stage / "sources", ec);

  compile::Options o = options;
  o.extra_flags.push_back("--iree-hal-dump-executable-benchmarks-to=" + (stage / "sources").string());
  std::string sha = KILN_TRY(util::sha256_file(model));
  auto program = KILN_TRY(compile::run({model, "program", target, stage / "program", nullptr, sha}, o, module, tools,
                                       executor, {}, tuning));

  std::vector<fs::path> sources;
  for (const auto& e : fs::directory_iterator(stage / "sources", ec)) {
    if (e.path().extension() == ".mlir") sources.push_back(e.path());
  }
  std::sort(sources.begin(), sources.end());
  if (sources.empty()) return fail(Code::kInternal, "the compiler dumped no dispatch benchmarks for " + model.string());
  DispatchBundle b;
  b.dir = output;
  b.iree_release = tools.release;
  b.target_spec = target.spec;
  b.runtime_device = target.runtime_device;
  b.program_name = compile::default_name(model);
  b.program_sha256 = sha;
  const auto& meta = program.record.json;
  if (auto t = meta.find("tuning"); t != meta.end() && t->is_object() && t->contains("record") && (*t)["record"].is_string()) {
    b.tuning_record = (*t)["record"].get<std::string>();
  }
  for (const auto& src : sources) {
    std::string name = src.stem().string() + ".vmfb";
    std::vector<std::string> argv = {tools.compile.string(), src.string()};
    argv.insert(argv.end(), target.flags.begin(), target.flags.end());
    argv.insert(argv.end(), {"-o", (stage / name).string()});
    auto r = KILN_TRY(executor.run({argv, src, stage, options.timeout, {}, false, nullptr}));
    if (!r.ok()) {
      return fail(Code::kInternal, fmt::format("compiling the dispatch benchmark {} failed ({}): {}", src.filename().string(),
                                               util::describe_outcome(r), compile::summarize_diagnostics(r.err)));
    }
    b.modules.push_back(name);
  }
  json manifest = {{"format", "kiln-dispatch-bundle"}, {"format_version", 1}, {"created_at", util::utc_timestamp()},
                   {"iree_release", b.iree_release}, {"target", {{"spec", b.target_spec}, {"runtime_device", b.runtime_device}}},
                   {"program", {{"name", b.program_name}, {"sha256", b.program_sha256}}},
                   {"tuning_record", b.tuning_record}, {"modules", b.modules}};
  KILN_TRY_STATUS(util::write_file_atomic(stage / "profile.json", manifest.dump(2) + "\n"));
  fs::remove_all(stage / "program", ec);
  fs::remove_all(stage / "sources", ec);
  fs::remove(output, ec);
  fs::rename(stage, output, ec);
  if (ec) return fail(Code::kFailedPrecondition, fmt::format("cannot move the bundle to {}: {}", output.string(), ec.message()));
  stage_dir.keep();
  return b;
}

Result<DispatchBundle> read_dispatch_bundle(const fs::path& dir) {
  fs::path file = dir / "profile.json";
  auto text = KILN_TRY(util::read_file(file));
  json j = KILN_TRY(util::parse_json(text, file.string()));
  if (!j.is_object() || !j.contains("format") || j["format"] != "kiln-dispatch-bundle" || !j.contains("format_version") ||
      j["format_version"] != 1) {
    return fail(Code::kInvalidArgument, file.string() + ": not a kiln dispatch-benchmark bundle (format 1)");
  }
  try {
    DispatchBundle b;
    b.dir = dir;
    b.iree_release = j.at("iree_release").get<std::string>();
    b.target_spec = j.at("target").at("spec").get<std::string>();
    b.runtime_device = j.at("target").at("runtime_device").get<std::string>();
    b.program_name = j.at("program").at("name").get<std::string>();
    b.program_sha256 = j.at("program").at("sha256").get<std::string>();
    b.tuning_record = j.value("tuning_record", "");
    b.modules = j.at("modules").get<std::vector<std::string>>();
    for (const auto& m : b.modules) {
      if (m.empty() || m.find('/') != std::string::npos || m[0] == '.') throw std::runtime_error("bad module name '" + m + "'");
    }
    return b;
  } catch (const std::exception& e) {
    return fail(Code::kInvalidArgument, fmt::format("{}: damaged bundle ({})", file.string(), e.what()));
  }
}

}  // namespace kiln::tune
