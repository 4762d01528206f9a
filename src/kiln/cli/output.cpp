#include "kiln/cli/output.h"

#include <iostream>

#include <fmt/format.h>

#include "kiln/compile/compile.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

void print_error(const Error& error, bool json) {
  if (json) {
    nlohmann::json out = {{"ok", false}, {"error", {{"code", code_name(error.code)}, {"message", error.message}}}};
    std::cout << out.dump(2) << "\n";
  }
  std::cerr << "kiln: error: " << error.message << "\n";
}

namespace {

std::string shape_text(const mlir::ValueType& t) {
  if (!t.is_tensor) return t.element;
  if (!t.ranked) return "[*] " + t.element;
  std::vector<std::string> dims;
  for (int64_t d : t.dims) dims.push_back(d == mlir::kDynamic ? "?" : std::to_string(d));
  return "[" + util::join(dims, ", ") + "] " + t.element + (t.has_dynamic_dims() ? "  (dynamic)" : "");
}

void describe_values(std::string& out, const char* title, const std::vector<mlir::Value>& values) {
  out += fmt::format("    {}:\n", title);
  if (values.empty()) out += "      (none)\n";
  for (size_t i = 0; i < values.size(); ++i) {
    out += fmt::format("      {:>2}  {:<16} {}\n", i, values[i].name.empty() ? "-" : values[i].name,
                       shape_text(values[i].type));
  }
}

}  // namespace

std::string describe_module(const std::string& file, const mlir::ModuleInfo& module) {
  std::string out;
  out += fmt::format("{}\n", file);
  out += fmt::format("  module:    {}\n", module.name.empty() ? "(unnamed)" : "@" + module.name);
  out += fmt::format("  format:    {}{}\n", module.format, module.producer.empty() ? "" : " (" + module.producer + ")");
  out += fmt::format("  dialects:  {}\n", util::join(module.dialects, ", "));
  for (const auto& f : module.functions) {
    if (!f.is_public) continue;
    out += fmt::format("  function @{} (public)\n", f.name);
    describe_values(out, "arguments", f.arguments);
    describe_values(out, "results", f.results);
  }
  size_t hidden = module.functions.size() - module.public_functions().size();
  if (hidden) out += fmt::format("  ({} private function{} not shown; --json lists them)\n", hidden, hidden == 1 ? "" : "s");
  return out;
}

nlohmann::json module_json(const std::string& file, const mlir::ModuleInfo& module) {
  nlohmann::json out = {{"file", file},
                        {"module", module.name.empty() ? nlohmann::json(nullptr) : nlohmann::json(module.name)},
                        {"format", module.format},
                        {"dialects", module.dialects},
                        {"functions", compile::functions_json(module)}};
  if (!module.producer.empty()) out["producer"] = module.producer;
  return out;
}

}  // namespace kiln::cli
