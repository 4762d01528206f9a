// How the command line shows things: human text, or JSON with --json.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kiln/mlir/module_info.h"
#include "kiln/util/error.h"

namespace kiln::cli {

// "kiln: error: <message>" on stderr (and a JSON object on stdout with --json).
void print_error(const Error& error, bool json);

// A module description for people.
std::string describe_module(const std::string& file, const mlir::ModuleInfo& module);

// The JSON `kiln inspect --json` prints.
nlohmann::json module_json(const std::string& file, const mlir::ModuleInfo& module);

}  // namespace kiln::cli
