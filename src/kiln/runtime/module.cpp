#include "kiln/runtime/module.h"

#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kiln/compile/record.h"
#include "kiln/mlir/scanner.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"
#include "kiln/util/json.h"
#include "kiln/util/subprocess.h"

namespace kiln::runtime {
namespace {

Result<ModuleSignature> from_metadata(const fs::path& module, const fs::path& meta_path, const std::string& function) {
  auto text = util::read_file(meta_path);
  if (!text) return tl::unexpected(text.error());
  nlohmann::json meta = KILN_TRY(util::parse_json(*text, meta_path.string()));
  auto record = KILN_TRY(compile::record_from_json(meta, meta_path.string()));
  ModuleSignature sig;
  sig.path = module;
  sig.source = "kiln metadata";
  sig.iree_release = record.iree_release;
  sig.default_device = record.runtime_device;
  sig.precision = record.precision;
  sig.invocation = record.invocation;
  sig.runtime_flags = record.runtime_flags;
  std::vector<std::string> publics;
  for (const auto& f : record.functions) {
    if (!f.is_public) continue;
    publics.push_back(f.name);
    if (!function.empty() && f.name != function) continue;
    if (function.empty() && publics.size() > 1) continue;
    sig.function = f.name;
    sig.inputs = f.arguments;
    sig.outputs = f.results;
  }
  // The module's types: the program's, narrowed as the compiler did.
  auto narrow = [&](std::vector<mlir::Value>& values, std::vector<std::string>& declared) {
    declared.assign(values.size(), "");
    for (size_t i = 0; i < values.size(); ++i) {
      auto to = record.demotions.find(values[i].type.element);
      if (to == record.demotions.end()) continue;
      declared[i] = values[i].type.element;
      values[i].type.element = to->second;
    }
  };
  narrow(sig.inputs, sig.declared_inputs);
  narrow(sig.outputs, sig.declared_outputs);
  if (function.empty() && publics.size() > 1) {
    return fail(Code::kInvalidArgument, fmt::format("{} has {} public functions ({}); choose one with --function",
                                                    module.string(), publics.size(), util::join(publics, ", ")));
  }
  if (sig.function.empty()) {
    return fail(Code::kNotFound, fmt::format("{} has no public function{}{}", module.string(),
                                             function.empty() ? "" : " @" + function,
                                             publics.empty() ? "" : "; it has: " + util::join(publics, ", ")));
  }
  return sig;
}

// iree-dump-module prints "iree.abi.declaration: sync func @main(%input0: tensor<..>, ...) -> (...)".
Result<ModuleSignature> from_reflection(const fs::path& module, const std::string& function,
                                        const toolchain::Toolchain& tools, compile::Executor& executor) {
  fs::path dump = tools.run_module.parent_path() / "iree-dump-module";
  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-dump-"));
  auto run = executor.run({{dump.string(), fs::absolute(module).string()}, module, scratch.path(), std::chrono::minutes(2)});
  if (!run) return tl::unexpected(run.error());
  if (!run->ok()) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} is not a module that this runtime (IREE {}) can read: {}", module.string(),
                            tools.runtime_release, util::trim(run->err.substr(0, 1000))));
  }
  return parse_reflection(run->out, module, function);
}

}  // namespace

Result<ModuleSignature> parse_reflection(std::string_view dump, const fs::path& module, const std::string& function) {
  // "iree.abi.declaration: [sync |async ]func @name(...) -> (...)", one per
  // line of the dump; found by plain search (the dump quotes the module).
  std::string text;
  std::set<std::string> async_functions;
  static const std::string marker = "iree.abi.declaration: ";
  for (size_t at = dump.find(marker); at != std::string::npos; at = dump.find(marker, at + 1)) {
    size_t end = dump.find('\n', at);
    std::string_view decl = dump.substr(at + marker.size(), end == std::string::npos ? std::string::npos : end - at - marker.size());
    bool async = util::starts_with(decl, "async ");
    for (std::string_view prefix : {"sync ", "async "}) {
      if (util::starts_with(decl, prefix)) decl.remove_prefix(prefix.size());
    }
    if (!util::starts_with(decl, "func @")) continue;
    if (async) async_functions.insert(std::string(decl.substr(6, decl.find('(') - 6)));
    text += "func.func public " + std::string(decl.substr(5)) + " {\n}\n";
  }
  auto scanned = mlir::scan_text(text);
  if (text.empty() || !scanned) {
    return fail(Code::kInvalidArgument, module.string() + " has no function signatures in its reflection "
                                                            "metadata; give kiln's metadata file next to it");
  }
  ModuleSignature sig;
  sig.path = module;
  sig.source = "module reflection";
  std::vector<std::string> names;
  for (const auto& f : scanned->info.functions) names.push_back(f.name);
  const mlir::Function* chosen = nullptr;
  if (!function.empty()) {
    chosen = scanned->info.find(function);
  } else if (scanned->info.functions.size() == 1) {
    chosen = &scanned->info.functions[0];
  } else {
    return fail(Code::kInvalidArgument, fmt::format("{} exports {} functions ({}); choose one with --function",
                                                    module.string(), names.size(), util::join(names, ", ")));
  }
  if (!chosen) {
    return fail(Code::kNotFound, fmt::format("{} has no function @{}; it has: {}", module.string(), function,
                                             util::join(names, ", ")));
  }
  sig.function = chosen->name;
  if (async_functions.count(chosen->name)) sig.invocation = "async";
  sig.inputs = chosen->arguments;
  sig.outputs = chosen->results;
  return sig;
}

Status check_module_file(const fs::path& path) {
  auto mapped = util::MappedFile::open(path);
  if (!mapped) return tl::unexpected(mapped.error());
  std::string_view b = mapped->bytes();
  bool zip = b.size() > 64 && b.substr(0, 4) == std::string_view("PK\x03\x04", 4) &&
             b.substr(0, 256).find("module.fb") != std::string_view::npos;
  bool flatbuffer = b.size() > 8 && b.substr(4, 4) == "IREE";
  if (!zip && !flatbuffer) {
    return fail(Code::kInvalidArgument,
                path.string() + ": not an IREE module (.vmfb): it has neither the IREE archive layout nor the "
                                "FlatBuffer identifier; compile StableHLO with 'kiln compile' first");
  }
  return {};
}

Result<ModuleSignature> load(const fs::path& path, const std::string& function, const toolchain::Toolchain& tools,
                             compile::Executor& executor) {
  KILN_TRY_STATUS(check_module_file(path));
  fs::path meta = path;
  meta.replace_extension(".json");
  std::error_code ec;
  if (fs::exists(meta, ec)) {
    auto sig = KILN_TRY(from_metadata(path, meta, function));
    if (!sig.iree_release.empty() && !tools.runtime_release.empty() && sig.iree_release != tools.runtime_release) {
      return fail(Code::kFailedPrecondition,
                  fmt::format("{} was built by IREE {} (per {}), but this runtime is IREE {}: a module only loads in "
                              "the runtime of the release that compiled it. Recompile it with IREE {}, or install "
                              "iree-base-runtime=={}",
                              path.string(), sig.iree_release, meta.filename().string(), tools.runtime_release,
                              tools.runtime_release, sig.iree_release));
    }
    return sig;
  }
  return from_reflection(path, function, tools, executor);
}

std::string narrowing_note(const ModuleSignature& sig) {
  std::set<std::string> notes;
  auto collect = [&](const std::vector<mlir::Value>& values, const std::vector<std::string>& declared) {
    for (size_t i = 0; i < declared.size() && i < values.size(); ++i) {
      if (!declared[i].empty()) notes.insert(declared[i] + " is computed as " + values[i].type.element);
    }
  };
  collect(sig.inputs, sig.declared_inputs);
  collect(sig.outputs, sig.declared_outputs);
  if (notes.empty()) return "";
  std::vector<std::string> list(notes.begin(), notes.end());
  bool f64 = notes.count("f64 is computed as f32") > 0;
  return fmt::format("in {}, {} by the compiler: inputs given in the program's types are converted, outputs come "
                     "back in the module's{}", sig.path.filename().string(), util::join(list, ", "),
                     f64 ? " (compile with --keep-f64 to keep f64 on cpu, cuda or rocm)" : "");
}

std::string value_label(const mlir::Value& value, size_t index, const char* what) {
  return value.name.empty() ? fmt::format("{} {}", what, index) : fmt::format("{} {} ({})", what, index, value.name);
}

std::string device_uri(const std::string& device) {
  if (device == "cpu" || device == "local") return "local-task";
  return device;
}

}  // namespace kiln::runtime
