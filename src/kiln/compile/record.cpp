#include "kiln/compile/record.h"

#include <fmt/format.h>

#include "kiln/mlir/types.h"

namespace kiln::compile {
namespace {

using nlohmann::json;

// Field readers that return errors naming the JSON path.
class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  Result<const json*> object(const json& parent, const char* key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_object()) return bad(path + "." + key, "an object");
    return &*it;
  }
  Result<std::string> string(const json& parent, const char* key, const std::string& path, bool required = true) const {
    auto it = parent.find(key);
    if (it == parent.end() && !required) return std::string();
    if (it == parent.end() || !it->is_string()) return bad(path + "." + key, "a string");
    return it->get<std::string>();
  }
  Result<uint64_t> count(const json& parent, const char* key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_number() || it->get<double>() < 0) return bad(path + "." + key, "a number >= 0");
    return static_cast<uint64_t>(it->get<double>());
  }
  Result<std::vector<mlir::Value>> values(const json& parent, const char* key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_array()) return bad(path + "." + key, "an array");
    std::vector<mlir::Value> out;
    for (size_t i = 0; i < it->size(); ++i) {
      const json& v = (*it)[i];
      std::string at = fmt::format("{}.{}[{}]", path, key, i);
      if (!v.is_object()) return bad(at, "an object");
      std::string type = KILN_TRY(string(v, "type", at));
      auto parsed = mlir::parse_type(type);
      if (!parsed) return fail(Code::kInvalidArgument, fmt::format("{}: {}.type: {}", where_, at, parsed.error().message));
      out.push_back({KILN_TRY(string(v, "name", at, false)), *parsed});
    }
    return out;
  }
  tl::unexpected<Error> bad(const std::string& path, const char* expected) const {
    return fail(Code::kInvalidArgument,
                fmt::format("{}: damaged module metadata: {} is not {}; compile the module again", where_, path, expected));
  }

 private:
  std::string where_;
};

}  // namespace

Result<ModuleRecord> record_from_json(const json& j, const std::string& where) {
  Reader r(where);
  if (!j.is_object() || j.value("format", json()).is_null() || !j["format"].is_string() ||
      j["format"] != "kiln-module-metadata") {
    return fail(Code::kInvalidArgument, where + ": not kiln module metadata");
  }
  if (!j.contains("format_version") || !j["format_version"].is_number_integer() ||
      j["format_version"].get<int>() != kRecordFormatVersion) {
    return fail(Code::kInvalidArgument, fmt::format("{}: metadata format version {} is not known to this kiln ({} is)", where,
                                                    j.contains("format_version") ? j["format_version"].dump() : "(none)",
                                                    kRecordFormatVersion));
  }
  ModuleRecord rec;
  rec.json = j;
  rec.iree_release = KILN_TRY(r.string(*KILN_TRY(r.object(j, "iree", "")), "release", ".iree"));
  const json& target = *KILN_TRY(r.object(j, "target", ""));
  rec.target_spec = KILN_TRY(r.string(target, "spec", ".target"));
  rec.runtime_device = KILN_TRY(r.string(target, "runtime_device", ".target", false));
  rec.target_note = KILN_TRY(r.string(target, "note", ".target", false));
  const json& output = *KILN_TRY(r.object(j, "output", ""));
  rec.output_sha256 = KILN_TRY(r.string(output, "sha256", ".output"));
  rec.output_size_bytes = KILN_TRY(r.count(output, "size_bytes", ".output"));
  const json& compile = *KILN_TRY(r.object(j, "compile", ""));
  rec.peak_rss_bytes = KILN_TRY(r.count(compile, "peak_rss_bytes", ".compile"));
  auto wall = compile.find("wall_seconds");
  if (wall == compile.end() || !wall->is_number()) return r.bad(".compile.wall_seconds", "a number");
  rec.compile_wall_seconds = wall->get<double>();
  KILN_TRY(r.object(j, "input", ""));
  rec.created_at = KILN_TRY(r.string(j, "created_at", "", false));
  if (j.contains("precision")) rec.precision = KILN_TRY(r.string(j, "precision", ""));
  if (j.contains("invocation")) rec.invocation = KILN_TRY(r.string(j, "invocation", ""));
  auto functions = j.find("functions");
  if (functions == j.end() || !functions->is_array()) return r.bad(".functions", "an array");
  for (size_t i = 0; i < functions->size(); ++i) {
    const json& f = (*functions)[i];
    std::string at = fmt::format(".functions[{}]", i);
    if (!f.is_object()) return r.bad(at, "an object");
    FunctionRecord fr;
    fr.name = KILN_TRY(r.string(f, "name", at));
    fr.is_public = KILN_TRY(r.string(f, "visibility", at)) == "public";
    fr.arguments = KILN_TRY(r.values(f, "arguments", at));
    fr.results = KILN_TRY(r.values(f, "results", at));
    rec.functions.push_back(std::move(fr));
  }
  if (auto d = j.find("demotions"); d != j.end()) {
    if (!d->is_object()) return r.bad(".demotions", "an object");
    for (const auto& [from, to] : d->items()) {
      if (!to.is_string()) return r.bad(".demotions." + from, "a string");
      rec.demotions[from] = to.get<std::string>();
    }
  } else {
    // Written before kiln recorded them: what the compiler's flags imply.
    std::vector<std::string> command;
    if (auto c = j.find("compiler_command"); c != j.end() && c->is_array()) {
      for (const auto& a : *c) {
        if (a.is_string()) command.push_back(a.get<std::string>());
      }
    }
    rec.demotions = demotions(command);
  }
  if (auto f = j.find("fallbacks"); f != j.end()) {
    if (!f->is_array()) return r.bad(".fallbacks", "an array");
    for (size_t i = 0; i < f->size(); ++i) {
      std::string at = fmt::format(".fallbacks[{}]", i);
      if (!(*f)[i].is_object()) return r.bad(at, "an object");
      rec.fallbacks.push_back(KILN_TRY(r.string((*f)[i], "name", at)));
    }
  }
  if (auto d = j.find("deployment"); d != j.end()) {
    if (!d->is_object()) return r.bad(".deployment", "an object");
    auto flags = d->find("runtime_flags");
    if (flags == d->end() || !flags->is_array()) return r.bad(".deployment.runtime_flags", "an array");
    for (const auto& f : *flags) {
      if (!f.is_string()) return r.bad(".deployment.runtime_flags[]", "a string");
      rec.runtime_flags.push_back(f.get<std::string>());
    }
  }
  return rec;
}

std::map<std::string, std::string> demotions(const std::vector<std::string>& flags) {
  // The last spelling of a flag wins, as in the compiler's own parsing.
  bool f64 = true, i64 = false;
  for (const auto& f : flags) {
    if (f == "--iree-input-demote-f64-to-f32" || f == "--iree-input-demote-f64-to-f32=true") f64 = true;
    if (f == "--iree-input-demote-f64-to-f32=false") f64 = false;
    if (f == "--iree-input-demote-i64-to-i32" || f == "--iree-input-demote-i64-to-i32=true") i64 = true;
    if (f == "--iree-input-demote-i64-to-i32=false") i64 = false;
  }
  std::map<std::string, std::string> out;
  if (f64) out["f64"] = "f32";
  if (i64) out["i64"] = "i32";
  return out;
}

}  // namespace kiln::compile
