// What run, validate and bench say about a module made from a
// shape-polymorphic JAX export: the sizes it was specialized to
// (`kiln compile --bind`), or the symbolic dimensions it takes at run time.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace kiln::cli {

// From the metadata next to the module (NAME.TARGET.json): {"b": 8} for a
// bound module, {"dynamic": ["b"]} for a dynamic one, null otherwise (no
// metadata, or no JAX symbolic dimensions).
nlohmann::json module_binding(const std::string& module_path);

// One line for people: "binding: b=8", "symbolic dimensions: b (give
// shapes with --shape)", or "".
std::string binding_line(const nlohmann::json& binding);

}  // namespace kiln::cli
