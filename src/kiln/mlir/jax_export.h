// What kiln does to a shape-polymorphic JAX export (jax.export with
// symbolic dimensions, as `Exported.mlir_module()` prints it) before IREE
// compiles it. Everything works on the MLIR text as JAX prints it (one
// operation a line, the pretty form); no IR is built.
//
// A JAX export has a public @main that reads each symbolic dimension from
// an argument's shape (stablehlo.get_dimension_size), checks the export's
// shape assertions and calls the wrapped function with the dimensions as
// leading i32 arguments ({jax.global_constant = "b"}).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::mlir {

// `module ... attributes {jax.uses_shape_polymorphism = true ...}`.
bool is_shape_polymorphic(std::string_view text);

// A symbolic dimension and where @main reads it: argument `argument`
// (0-based, of @main), dimension `dim`.
struct SymbolicDim {
  std::string name;
  size_t argument = 0;
  int64_t dim = 0;
};

// The symbolic dimensions of a JAX export in the order of the wrapped
// function's dimension arguments; empty for a program without any.
Result<std::vector<SymbolicDim>> symbolic_dims(std::string_view text);

// Makes the export's dynamic broadcasts compilable. JAX broadcasts only
// dimensions of static size 1, so a dynamic operand dimension of
// stablehlo.dynamic_broadcast_in_dim never expands; IREE needs that said
// (known_nonexpanding_dimensions) or refuses the op. IREE's canonicalizer
// merges chained broadcasts and drops the attribute, so chains are merged
// here first. `annotated` counts the operations changed.
std::string annotate_dynamic_broadcasts(std::string_view text, size_t* annotated = nullptr);

// name=value pairs, in the order the user gave them.
using Binding = std::vector<std::pair<std::string, int64_t>>;

// "b=8" -> {"b", 8}. Values are 1 or more.
Result<std::pair<std::string, int64_t>> parse_binding(std::string_view text);

// "b8" or "b8_n16": the binding as a file-name part.
std::string binding_slug(const Binding& binding);

// Specializes @main to the bound sizes: its arguments get static shapes
// (cast back to the dynamic types the body was written for), the bound
// dimensions become constants, and IREE's canonicalization makes the rest
// static. Names not among the export's dimensions are an error listing
// those it has. Results stay as the export declares them.
Result<std::string> bind_dims(std::string_view text, const Binding& binding);

// A multi-platform export (platforms=("cuda", "cpu")) takes the platform's
// index as @main's first argument ({jax.global_constant = "_platform_index"});
// this makes it the constant `index`. Returns the text unchanged when
// there is no such argument.
Result<std::string> bind_platform_index(std::string_view text, int64_t index);

// Whether @main has the platform-index argument.
bool has_platform_index(std::string_view text);

}  // namespace kiln::mlir
