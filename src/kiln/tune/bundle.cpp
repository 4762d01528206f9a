#include "kiln/tune/bundle.h"
#include "kiln/util/json.h"

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/hash.h"

namespace kiln::tune {

using nlohmann::json;

namespace {

json candidate_json(const Candidate& c) {
  return {{"id", c.id},
          {"level", c.level},
          {"summary", c.summary},
          {"module", c.module},
          {"compile_flags", c.compile_flags},
          {"configs", c.configs},
          {"dispatches", c.dispatches},
          {"runtime", {{"name", c.runtime_name}, {"flags", c.runtime_flags}}},
          {"executable", c.executable}};
}

Candidate candidate_from_json(const json& j) {
  Candidate c;
  c.id = j.at("id").get<std::string>();
  c.level = j.at("level").get<std::string>();
  c.summary = j.value("summary", "");
  c.module = j.at("module").get<std::string>();
  c.compile_flags = j.at("compile_flags").get<std::vector<std::string>>();
  c.configs = j.at("configs").get<std::map<std::string, std::string>>();
  c.dispatches = j.value("dispatches", std::map<std::string, std::string>{});
  c.runtime_name = j.at("runtime").at("name").get<std::string>();
  c.runtime_flags = j.at("runtime").at("flags").get<std::vector<std::string>>();
  c.executable = j.value("executable", "");
  if (c.executable.find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw std::runtime_error("executable digest '" + c.executable + "' is not hexadecimal");
  }
  // Paths inside a bundle stay inside it; ids and executable names become
  // file names when a bundle is read back (round 2, apply).
  auto plain = [](const std::string& name) {
    return !name.empty() && name[0] != '.' &&
           name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+@-") == std::string::npos;
  };
  auto inside = [](const std::string& p) { return !p.empty() && p[0] != '/' && p.find("..") == std::string::npos; };
  if (!plain(c.id)) throw std::runtime_error("candidate id '" + c.id + "' is not a plain name");
  if (!inside(c.module)) throw std::runtime_error("path '" + c.module + "' leaves the bundle");
  for (const auto& [exe, p] : c.configs) {
    if (!plain(exe) || !inside(p)) throw std::runtime_error("configuration '" + exe + "' -> '" + p + "' leaves the bundle");
  }
  for (const auto& [exe, s] : c.dispatches) {
    if (!plain(exe)) throw std::runtime_error("executable name '" + exe + "' is not a plain name");
  }
  return c;
}

}  // namespace

json to_json(const Bundle& b) {
  json candidates = json::array();
  for (const auto& c : b.candidates) candidates.push_back(candidate_json(c));
  return {{"format", "kiln-tune-bundle"},
          {"format_version", kBundleVersion},
          {"round", b.round},
          {"created_at", b.created_at},
          {"iree_release", b.iree_release},
          {"target", {{"spec", b.target_spec}, {"slug", b.target_slug}, {"backend", b.backend},
                      {"runtime_device", b.runtime_device}, {"gpu", b.gpu}}},
          {"program", {{"name", b.program_name}, {"sha256", b.program_sha256}, {"function", b.function}}},
          {"precision", b.precision},
          {"invocation", b.invocation},
          {"options", b.options},
          {"inputs", {{"seed", b.seed}}},
          {"dispatches", b.dispatches},
          {"executables", b.executables},
          {"candidates", candidates},
          {"dropped", b.dropped}};
}

Status write_bundle(const Bundle& b) {
  return util::write_file_atomic(b.dir / "bundle.json", to_json(b).dump(2) + "\n");
}

Result<Bundle> read_bundle(const fs::path& dir) {
  fs::path file = dir / "bundle.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) {
    return fail(Code::kNotFound, fmt::format("{} is not a tuning bundle (no bundle.json); make one with 'kiln tune prepare'",
                                             dir.string()));
  }
  auto text = KILN_TRY(util::read_file(file));
  json j = KILN_TRY(util::parse_json(text, file.string()));
  if (!j.is_object() || !j.contains("format") || j["format"] != "kiln-tune-bundle") {
    return fail(Code::kInvalidArgument, file.string() + ": not a kiln tuning bundle");
  }
  if (!j.contains("format_version") || j["format_version"] != kBundleVersion) {
    return fail(Code::kInvalidArgument, fmt::format("{}: bundle format version {} is not known to this kiln ({} is); "
                                                    "prepare the bundle again with this kiln",
                                                    file.string(), j.contains("format_version") ? j["format_version"].dump() : "(none)",
                                                    kBundleVersion));
  }
  try {
    Bundle b;
    b.dir = dir;
    b.round = j.at("round").get<int>();
    b.created_at = j.value("created_at", "");
    b.iree_release = j.at("iree_release").get<std::string>();
    const auto& t = j.at("target");
    b.target_spec = t.at("spec").get<std::string>();
    b.target_slug = t.at("slug").get<std::string>();
    b.backend = t.at("backend").get<std::string>();
    b.runtime_device = t.at("runtime_device").get<std::string>();
    b.gpu = t.value("gpu", "");
    const auto& p = j.at("program");
    b.program_name = p.at("name").get<std::string>();
    b.program_sha256 = p.at("sha256").get<std::string>();
    b.function = p.at("function").get<std::string>();
    b.precision = j.at("precision").get<std::string>();
    b.invocation = j.value("invocation", "sync");
    b.options = j.value("options", std::vector<std::string>{});
    b.seed = j.at("inputs").at("seed").get<uint64_t>();
    b.dispatches = j.value("dispatches", json::array());
    b.dropped = j.value("dropped", json::array());
    b.executables = j.value("executables", json::array());
    for (const auto& c : j.at("candidates")) b.candidates.push_back(candidate_from_json(c));
    if (b.candidates.empty() || b.candidates.front().id != "reference") {
      return fail(Code::kInvalidArgument, file.string() + ": the bundle has no reference candidate");
    }
    return b;
  } catch (const std::exception& e) {
    return fail(Code::kInvalidArgument, fmt::format("{}: damaged bundle ({}); prepare it again", file.string(), e.what()));
  }
}

Result<std::string> bundle_digest(const fs::path& dir) { return util::sha256_file(dir / "bundle.json"); }

const Measurement* Results::find(const std::string& id) const {
  for (const auto& m : measurements) {
    if (m.id == id) return &m;
  }
  return nullptr;
}

json to_json(const Results& r) {
  json rows = json::array();
  for (const auto& m : r.measurements) {
    json row = {{"id", m.id}, {"status", m.status}};
    if (m.status == "ok") {
      row["latency_ms"] = m.latency_ms;
      if (m.p50_ms > 0) row["p50_ms"] = m.p50_ms;
    }
    row["max_abs_error"] = m.max_abs_error;
    if (!m.message.empty()) row["message"] = m.message;
    rows.push_back(row);
  }
  return {{"format", "kiln-tune-results"},
          {"format_version", kResultsVersion},
          {"bundle_sha256", r.bundle_digest},
          {"device", {{"uri", r.device_uri}, {"name", r.device_name}}},
          {"measured_at", r.measured_at},
          {"seconds", r.seconds},
          {"measurements", rows},
          {"profile", r.profile}};
}

Result<Results> read_results(const fs::path& file) {
  auto text = KILN_TRY(util::read_file(file));
  json j = KILN_TRY(util::parse_json(text, file.string()));
  if (!j.is_object() || !j.contains("format") || j["format"] != "kiln-tune-results") {
    return fail(Code::kInvalidArgument, file.string() + ": not a kiln tuning results file");
  }
  if (!j.contains("format_version") || j["format_version"] != kResultsVersion) {
    return fail(Code::kInvalidArgument, fmt::format("{}: results format version {} is not known to this kiln ({} is)",
                                                    file.string(), j.contains("format_version") ? j["format_version"].dump() : "(none)",
                                                    kResultsVersion));
  }
  try {
    Results r;
    r.bundle_digest = j.at("bundle_sha256").get<std::string>();
    r.device_uri = j.at("device").at("uri").get<std::string>();
    r.device_name = j.at("device").at("name").get<std::string>();
    r.measured_at = j.value("measured_at", "");
    r.seconds = j.value("seconds", 0.0);
    r.profile = j.value("profile", json());
    for (const auto& row : j.at("measurements")) {
      Measurement m;
      m.id = row.at("id").get<std::string>();
      m.status = row.at("status").get<std::string>();
      m.latency_ms = row.value("latency_ms", 0.0);
      m.p50_ms = row.value("p50_ms", 0.0);
      m.max_abs_error = row.value("max_abs_error", 0.0);
      m.message = row.value("message", "");
      r.measurements.push_back(std::move(m));
    }
    return r;
  } catch (const std::exception& e) {
    return fail(Code::kInvalidArgument, fmt::format("{}: damaged results file ({})", file.string(), e.what()));
  }
}

}  // namespace kiln::tune
