// StableHLO's dot_general may name an algorithm: the precision each operand
// is rounded to, the accumulation type, and how many bf16/tf32 parts
// emulate a wider type. JAX writes one for a dot with an explicit
// precision preset (jax.lax.DotAlgorithmPreset, keras-hub's attention in
// bf16). IREE 3.13 refuses a batched dot_general with an algorithm ("failed
// to legalize operation 'stablehlo.dot_general'") and drops it silently from
// the others, so kiln writes each such dot as the plain operations it
// means before compiling:
//
//   operands converted to the algorithm's precision types where they are
//   stored in another type (tf32: f32 rounded to 10 mantissa bits with
//   stablehlo.reduce_precision);
//   the dot computed with the accumulation type as its result type;
//   that result converted to the type the dot declared.
//
// An emulated algorithm (more than one component or primitive operation,
// e.g. BF16_BF16_F32_X3) approximates a dot in its accumulation type; it
// becomes that dot, which is at least as accurate. allow_imprecise_accumulation
// permits, and never requires, a less accurate sum: it is dropped.
//
// Works on the MLIR text as JAX and iree-opt print it (pretty form, one
// operation a line); no IR is built.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/util/error.h"

namespace kiln::mlir {

// `algorithm = <lhs_precision_type = bf16, ...>` as its fields.
struct DotAlgorithm {
  std::string lhs_precision;
  std::string rhs_precision;
  std::string accumulation;
  int64_t lhs_components = 1;
  int64_t rhs_components = 1;
  int64_t primitive_operations = 1;
  bool imprecise_accumulation = false;

  // More than one component or primitive operation: a wider type emulated.
  bool emulated() const { return lhs_components > 1 || rhs_components > 1 || primitive_operations > 1; }
};

// Parses the inside of the angle brackets. Every field must be there.
Result<DotAlgorithm> parse_dot_algorithm(std::string_view body);

// Whether the text has a dot_general with an algorithm, in any spelling kiln
// may meet: StableHLO pretty or generic form, or VHLO (the portable artifact
// as iree-opt prints it).
bool has_dot_algorithm(std::string_view text);

// Whether that dot is written in VHLO, which must be printed as StableHLO
// first (toolchain::print_vhlo_as_stablehlo).
bool has_vhlo_dot_algorithm(std::string_view text);

// Whether the text may have a dot_general with a bf16 or f16 result, in any
// spelling (a cheap look at each dot's line; it may say yes wrongly, never
// no wrongly).
bool has_narrow_dot(std::string_view text);

struct DotOptions {
  // Also sum every dot_general of bf16 or f16 result (without an algorithm)
  // in f32 and round the sum once, as XLA does: IREE 3.13's CPU code sums a
  // bf16 matmul in bf16 (docs/targets.md, "16-bit programs").
  bool f32_accumulation = false;
};

struct LoweredDots {
  std::string text;
  size_t lowered = 0;  // dot_general operations with an algorithm rewritten
  size_t widened = 0;  // 16-bit dots made to sum in f32 (DotOptions::f32_accumulation)
};

// Rewrites every dot_general with an algorithm as described above (and with
// `options`, every 16-bit one). A dot in the generic form or with an
// algorithm that has no StableHLO spelling is an error naming its line.
Result<LoweredDots> lower_dot_algorithms(std::string_view text, DotOptions options = {});

}  // namespace kiln::mlir
