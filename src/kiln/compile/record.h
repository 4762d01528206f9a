// The metadata record written next to every module, as kiln's code reads
// it. The record travels as JSON (files, the cache, a store) and is read
// back only through record_from_json, which checks every field a reader
// uses: a damaged or hand-edited record is an error value, never an
// exception in some thread that reads it later.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/mlir/module_info.h"
#include "kiln/util/error.h"

namespace kiln::compile {

struct FunctionRecord {
  std::string name;
  bool is_public = false;
  std::vector<mlir::Value> arguments;
  std::vector<mlir::Value> results;
};

struct ModuleRecord {
  nlohmann::json json;  // the record as written, for output and re-publishing
  std::string iree_release;
  std::string target_spec;
  std::string runtime_device;
  std::string target_note;  // "" when the target has none
  std::string precision = "highest";
  std::string invocation = "sync";
  std::string output_sha256;
  uint64_t output_size_bytes = 0;
  uint64_t peak_rss_bytes = 0;
  double compile_wall_seconds = 0;
  std::string created_at;
  std::vector<FunctionRecord> functions;
  std::vector<std::string> runtime_flags;  // the deployment recipe, if any
  // Element types the compiler narrowed ({"f64": "f32"}): the module's
  // inputs and outputs have the narrowed ones.
  std::map<std::string, std::string> demotions;
  // The fallbacks the compile needed (compile/fallback.h), by name, in the
  // order they were applied; empty for a compile that needed none.
  std::vector<std::string> fallbacks;
};

inline constexpr int kRecordFormatVersion = 1;

// Checks and reads a record; `where` names it in errors (a path, "the
// cache entry ..."). The error says which field is wrong.
Result<ModuleRecord> record_from_json(const nlohmann::json& j, const std::string& where);

// The element types the compiler narrows under `flags` ({"f64": "f32"} by
// default; i64 -> i32 with --iree-input-demote-i64-to-i32): a module's
// inputs and outputs have the narrowed types, not the program's.
std::map<std::string, std::string> demotions(const std::vector<std::string>& flags);

}  // namespace kiln::compile
