#include "kiln/tuning/database.h"
#include "kiln/util/json.h"

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::tuning {
namespace {

using nlohmann::json;

void section(std::string& out, const std::string& tag, const std::string& value) {
  out += fmt::format("{}\n{:020}\n", tag, value.size());
  out += value;
}

bool is_key(const std::string& name) {
  return name.size() == 64 && name.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

std::string key_of(const Identity& id) {
  std::string bytes;
  section(bytes, "kiln.tuning.format", std::to_string(kFormatVersion));
  section(bytes, "program.sha256", id.program_sha256);
  section(bytes, "target", id.target_slug);
  section(bytes, "iree.release", id.iree_release);
  section(bytes, "precision", id.precision);
  // Absent for the synchronous convention, so records keep their keys.
  if (id.invocation != "sync") section(bytes, "invocation", id.invocation);
  // Absent without options, so records tuned without them keep their keys.
  if (!id.options.empty()) {
    section(bytes, "options.count", std::to_string(id.options.size()));
    for (const auto& f : id.options) section(bytes, "option", f);
  }
  return util::sha256_hex(bytes);
}

bool is_kernel_object(const std::string& name) { return name.ends_with(".ptx"); }

std::string config_file_name(const std::string& name) { return is_kernel_object(name) ? name : name + ".mlir"; }

std::string config_name(const std::string& file_name) {
  if (is_kernel_object(file_name)) return file_name;
  return file_name.ends_with(".mlir") ? file_name.substr(0, file_name.size() - 5) : "";
}

std::string module_digest(const std::vector<std::string>& compile_flags,
                          const std::vector<std::pair<std::string, std::string>>& configs) {
  std::string bytes;
  section(bytes, "flags.count", std::to_string(compile_flags.size()));
  for (const auto& f : compile_flags) section(bytes, "flag", f);
  auto sorted = configs;
  std::sort(sorted.begin(), sorted.end());
  section(bytes, "configs.count", std::to_string(sorted.size()));
  for (const auto& [name, text] : sorted) {
    section(bytes, "config.name", name);
    section(bytes, "config.text", text);
  }
  return util::sha256_hex(bytes);
}

json to_json(const Record& r) {
  return {{"format", "kiln-tuning-record"},
          {"format_version", kFormatVersion},
          {"key", r.key},
          {"program", {{"name", r.program_name}, {"sha256", r.id.program_sha256}}},
          {"target", {{"spec", r.target_spec}, {"slug", r.id.target_slug}}},
          {"iree_release", r.id.iree_release},
          {"precision", r.id.precision},
          {"invocation", r.id.invocation},
          {"options", r.id.options},
          {"device", r.device},
          {"candidate", r.candidate},
          {"summary", r.summary},
          {"compile_flags", r.compile_flags},
          {"runtime_flags", r.runtime_flags},
          {"dispatches", r.dispatches},
          {"latency_ms", r.latency_ms},
          {"baseline_ms", r.baseline_ms},
          {"measured_at", r.measured_at},
          {"module_digest", r.module_digest}};
}

Result<Record> record_from_json(const json& j, const std::string& where) {
  // Read with checks: a record is a file a person can edit or damage.
  try {
    if (!j.is_object() || j.value("format", "") != "kiln-tuning-record") {
      return fail(Code::kInvalidArgument, where + ": not a kiln tuning record");
    }
    int version = j.value("format_version", 0);
    if (version != kFormatVersion) {
      return fail(Code::kInvalidArgument,
                  fmt::format("{}: tuning record format version {} is not known to this kiln ({} is); tune again",
                              where, version, kFormatVersion));
    }
    Record r;
    r.key = j.at("key").get<std::string>();
    r.program_name = j.at("program").at("name").get<std::string>();
    r.id.program_sha256 = j.at("program").at("sha256").get<std::string>();
    r.target_spec = j.at("target").at("spec").get<std::string>();
    r.id.target_slug = j.at("target").at("slug").get<std::string>();
    r.id.iree_release = j.at("iree_release").get<std::string>();
    r.id.precision = j.at("precision").get<std::string>();
    r.id.invocation = j.value("invocation", "sync");
    r.id.options = j.value("options", std::vector<std::string>{});
    r.device = j.value("device", "");
    r.candidate = j.value("candidate", "");
    r.summary = j.value("summary", "");
    r.compile_flags = j.at("compile_flags").get<std::vector<std::string>>();
    r.runtime_flags = j.at("runtime_flags").get<std::vector<std::string>>();
    r.dispatches = j.value("dispatches", json::object());
    r.latency_ms = j.at("latency_ms").get<double>();
    r.baseline_ms = j.value("baseline_ms", 0.0);
    r.measured_at = j.value("measured_at", "");
    r.module_digest = j.at("module_digest").get<std::string>();
    if (key_of(r.id) != r.key) return fail(Code::kInvalidArgument, where + ": the record's key does not match its contents");
    return r;
  } catch (const json::exception& e) {
    return fail(Code::kInvalidArgument, fmt::format("{}: damaged tuning record ({}); remove it with 'kiln tune forget'",
                                                    where, e.what()));
  }
}

namespace {

Result<Record> read_record(const fs::path& dir) {
  fs::path file = dir / "record.json";
  auto text = KILN_TRY(util::read_file(file));
  json j = KILN_TRY(util::parse_json(text, file.string()));
  auto r = KILN_TRY(record_from_json(j, file.string()));
  if (r.key != dir.filename().string()) {
    return fail(Code::kInvalidArgument, file.string() + ": the record's key does not match its folder; remove it with "
                                        "'kiln tune forget'");
  }
  std::error_code ec;
  if (fs::is_directory(dir / "configs", ec) && !fs::is_empty(dir / "configs", ec)) r.configs_dir = dir / "configs";
  return r;
}

}  // namespace

Result<std::optional<Record>> Database::find(const Identity& id) const {
  fs::path dir = root_ / "v1" / key_of(id);
  std::error_code ec;
  if (!fs::exists(dir / "record.json", ec)) return std::optional<Record>();
  return std::optional<Record>(KILN_TRY(read_record(dir)));
}

Result<Record> Database::put(Record record, const std::vector<std::pair<std::string, std::string>>& configs) {
  record.key = key_of(record.id);
  record.module_digest = module_digest(record.compile_flags, configs);
  fs::path v1 = root_ / "v1";
  std::error_code ec;
  fs::create_directories(v1 / "tmp", ec);
  if (ec) return fail(Code::kFailedPrecondition, fmt::format("cannot create the tuning database at {}: {}", v1.string(), ec.message()));
  auto staging = KILN_TRY(util::TempDir::create(v1 / "tmp", "record-"));
  if (!configs.empty()) {
    fs::create_directories(staging.path() / "configs", ec);
    for (const auto& [name, text] : configs) {
      if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
        return fail(Code::kInvalidArgument, "invalid executable name '" + name + "' in a tuning record");
      }
      KILN_TRY_STATUS(util::write_file_atomic(staging.path() / "configs" / config_file_name(name), text));
    }
  }
  KILN_TRY_STATUS(util::write_file_atomic(staging.path() / "record.json", to_json(record).dump(2) + "\n"));
  // Replace whole: the old record moves aside, the new one moves in.
  fs::path final_dir = v1 / record.key;
  fs::path old = staging.path().string() + ".old";
  fs::rename(final_dir, old, ec);
  ec.clear();
  fs::rename(staging.path(), final_dir, ec);
  if (ec) {
    std::error_code back;
    fs::rename(old, final_dir, back);  // keep the record there was
    return fail(Code::kFailedPrecondition, fmt::format("cannot store the tuning record in {}: {}", final_dir.string(), ec.message()));
  }
  staging.keep();
  fs::remove_all(old, ec);
  if (!configs.empty()) record.configs_dir = final_dir / "configs";
  return record;
}

Result<std::vector<Record>> Database::list() const {
  std::vector<Record> out;
  fs::path v1 = root_ / "v1";
  std::error_code ec;
  if (!fs::is_directory(v1, ec)) return out;
  for (const auto& entry : fs::directory_iterator(v1, ec)) {
    if (!is_key(entry.path().filename().string())) continue;
    out.push_back(KILN_TRY(read_record(entry.path())));
  }
  std::sort(out.begin(), out.end(), [](const Record& a, const Record& b) {
    return std::tie(a.program_name, a.target_spec, a.id.precision, a.id.invocation) <
           std::tie(b.program_name, b.target_spec, b.id.precision, b.id.invocation);
  });
  return out;
}

Result<int> Database::forget(const std::string& what) {
  if (what.empty()) return fail(Code::kInvalidArgument, "say which record to forget: a key prefix or a program name");
  fs::path v1 = root_ / "v1";
  std::error_code ec;
  if (!fs::is_directory(v1, ec)) return 0;
  int removed = 0;
  for (const auto& entry : fs::directory_iterator(v1, ec)) {
    std::string name = entry.path().filename().string();
    if (!is_key(name)) continue;
    bool match = what.size() >= 6 && util::starts_with(name, what);
    if (!match) {
      auto r = read_record(entry.path());
      match = r && r->program_name == what;
    }
    if (match) {
      fs::remove_all(entry.path(), ec);
      if (ec) return fail(Code::kFailedPrecondition, "cannot remove " + entry.path().string() + ": " + ec.message());
      ++removed;
    }
  }
  return removed;
}

fs::path default_root() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) return fs::path(xdg) / "kiln" / "tuning";
  if (const char* home = std::getenv("HOME"); home && *home) return fs::path(home) / ".local" / "share" / "kiln" / "tuning";
  return util::temp_root() / "kiln-tuning";
}

}  // namespace kiln::tuning
