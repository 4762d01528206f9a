// StableHLO value types as kiln reports them: tensors with a shape and an
// element type, or any other type (tokens, tuples) kept as text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::mlir {

inline constexpr int64_t kDynamic = -1;

struct ValueType {
  bool is_tensor = false;
  bool ranked = true;
  std::vector<int64_t> dims;  // kDynamic marks a dynamic dimension
  std::string element;        // "f32", "ui8", "complex<f32>", "f8E4M3FN"; for non-tensors the type text
  bool bounded = false;       // dynamic dims carry a static upper bound (#stablehlo.bounds)

  // Builtin spelling: "tensor<?x8xf32>", "tensor<*xf32>", "!stablehlo.token".
  std::string text() const;
  bool has_dynamic_dims() const;
};

// Parses a builtin type ("tensor<2x?xf32>", "!stablehlo.token") or its VHLO
// spelling ("!vhlo.tensor_v1<2x?x!vhlo.f32_v1>"), normalising VHLO names to
// the builtin ones. Unknown element types are an error.
Result<ValueType> parse_type(std::string_view text);

// Normalises one element type: "!vhlo.bool_v1" -> "i1", "f32" -> "f32".
// Returns "" for a name that is no StableHLO element type.
std::string normalize_element_type(std::string_view text);

// Every element type StableHLO defines, in builtin spelling.
const std::vector<std::string>& known_element_types();

}  // namespace kiln::mlir
