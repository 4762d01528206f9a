#include "kiln/cli/module_binding.h"

#include <filesystem>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

nlohmann::json module_binding(const std::string& module_path) {
  std::filesystem::path metadata = std::filesystem::path(module_path).replace_extension(".json");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(metadata, ec)) return nullptr;
  auto text = util::read_file(metadata);
  if (!text) return nullptr;
  auto record = nlohmann::json::parse(*text, nullptr, false);
  if (!record.is_object()) return nullptr;
  if (record.contains("binding") && record["binding"].is_object()) return record["binding"];
  if (record.contains("jax") && record["jax"].is_object() && record["jax"].value("symbolic_dims", nlohmann::json::array()).is_array() &&
      !record["jax"]["symbolic_dims"].empty()) {
    return {{"dynamic", record["jax"]["symbolic_dims"]}};
  }
  return nullptr;
}

std::string binding_line(const nlohmann::json& binding) {
  if (!binding.is_object()) return "";
  if (binding.contains("dynamic")) {
    std::vector<std::string> names;
    for (const auto& n : binding["dynamic"]) names.push_back(n.is_string() ? n.get<std::string>() : n.dump());
    return "symbolic dimensions: " + util::join(names, ", ") + " (dynamic; give shapes with --shape)";
  }
  std::vector<std::string> parts;
  for (const auto& [name, value] : binding.items()) parts.push_back(name + "=" + value.dump());
  return "binding: " + util::join(parts, ", ") + " (static module)";
}

}  // namespace kiln::cli
