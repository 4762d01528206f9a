// jax.export's own format: the bytes of `Exported.serialize()`, a
// FlatBuffer (JAX's jax/_src/export/serialization.fbs) that holds the
// function's name, its input and output shapes and dtypes (symbolic
// dimensions as names), the platforms it was lowered for, and the StableHLO
// module as portable VHLO bytecode. The buffer has no file identifier; it is
// recognised by a root table whose module field holds MLIR bytecode.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::mlir {

struct JaxAval {
  std::vector<std::string> shape;  // "8", or a symbolic dimension such as "b" or "2*b"
  std::string dtype;               // StableHLO spelling: "f32", "i1", "bf16"
};

struct JaxExported {
  uint16_t serialization_version = 0;
  uint16_t calling_convention_version = 0;
  std::string function_name;
  std::vector<JaxAval> inputs, outputs;
  std::vector<std::string> platforms;  // "cpu", "cuda", "rocm", "tpu"
  std::string_view module;             // VHLO bytecode; points into the bytes read

  // The symbolic dimension names of the inputs, in order of appearance.
  std::vector<std::string> symbolic_dims() const;
};

// Whether `bytes` look like a serialized Exported (cheap; for detection).
bool is_jax_exported(std::string_view bytes);

// Reads a serialized Exported; every offset is checked against the size.
Result<JaxExported> read_jax_exported(std::string_view bytes);

// The JAX platform a kiln backend runs ("cuda" for cuda, "cpu" for cpu,
// "rocm" for rocm); "" for backends JAX does not lower for.
std::string jax_platform_of(std::string_view backend);

// @main's platform-index argument made the constant `index`, in the VHLO
// text iree-opt prints for the module (`vhlo.func_v1 @main(...)` with its
// `arg_attrs` after the body). Unchanged when there is no such argument.
Result<std::string> bind_vhlo_platform_index(std::string_view text, int64_t index);

}  // namespace kiln::mlir
