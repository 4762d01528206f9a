// What `kiln inspect` reports about a StableHLO module.
#pragma once

#include <string>
#include <vector>

#include "kiln/mlir/types.h"

namespace kiln::mlir {

struct Value {
  std::string name;  // from loc("x") on arguments or jax.result_info on results; may be empty
  ValueType type;
};

struct Function {
  std::string name;
  bool is_public = true;
  std::vector<Value> arguments;
  std::vector<Value> results;
  size_t line = 0;  // where the function is defined in the text inspected
};

struct ModuleInfo {
  std::string name;       // module @name, or "" when unnamed
  std::string format;     // "text", "bytecode" or "portable-artifact"
  std::string producer;   // bytecode producer, e.g. "StableHLO_v1.15.0"
  std::vector<std::string> dialects;  // sorted
  std::vector<Function> functions;
  // Bytecode and Exported inputs: a dot_general names an algorithm (which
  // kiln rewrites, mlir/dot_algorithm.h). Text is looked at when compiled.
  bool dot_algorithms = false;
  bool narrow_dots = false;  // may have a dot_general with a bf16 or f16 result

  const Function* find(const std::string& function_name) const;
  std::vector<const Function*> public_functions() const;
};

}  // namespace kiln::mlir
