// Comparing an output with its expected value, the way `kiln validate` does:
// per-element |got - want| <= atol + rtol * |want| for floating point, exact
// equality for integers and booleans, and explicit rules for NaN and Inf.
#pragma once

#include <cstdint>
#include <string>

#include "kiln/array/array.h"

namespace kiln::array {

struct Tolerance {
  double atol = 0;
  double rtol = 0;
  // When set, atol is multiplied by max(1, largest |reference| value of the
  // output): the absolute error of a long reduction grows with the size of
  // its terms, which the output's scale reflects and a near-zero element
  // (cancellation) does not. The defaults use it; --atol does not.
  bool atol_scales_with_output = false;
};

// Defaults by element type: loose enough for GPU-vs-CPU reductions of the
// same program, tight enough to catch a wrong result. Integers: exact.
Tolerance default_tolerance(const std::string& element);

enum class NanPolicy {
  kEqual,  // NaN where the reference has NaN passes; NaN elsewhere fails
  kFail,   // any NaN in the output fails
};

struct Comparison {
  bool passed = false;
  std::string problem;       // set when the arrays cannot be compared (shape, type)
  int64_t count = 0;
  int64_t mismatches = 0;
  double max_abs_error = 0;  // over finite element pairs
  double max_rel_error = 0;  // |got - want| / |want| over finite pairs with want != 0
  int64_t first_mismatch = -1;  // flat index
  double got_at_first = 0;
  double want_at_first = 0;
  Tolerance tolerance;   // as given
  double effective_atol = 0;  // after scaling
};

// Compares element by element; `tolerance` is ignored for integer types.
Comparison compare(const Array& got, const Array& want, Tolerance tolerance, NanPolicy nans);

// How far an output is from a reference of higher precision (the same
// program computed in f32), over the elements where the reference is finite.
struct ErrorStats {
  double max_abs = 0;
  double rms = 0;          // root mean square of the differences
  int64_t non_finite = 0;  // NaN or Inf in the output where the reference is finite
};

// The check that a 16-bit build is as accurate as the framework's own
// 16-bit result: both are compared with the f32 result of the same program,
// and the module passes when its max and RMS errors are each within
// `factor` times the framework's. A framework error below the output type's
// own rounding (unit roundoff times max |reference| for the max error, times
// the RMS of the reference for the RMS error) counts as that rounding, so an
// exact framework result does not demand an exact module.
struct ReferenceCheck {
  bool passed = false;
  std::string problem;  // set when the arrays cannot be compared
  ErrorStats module, framework;
  double factor = 0;
  double floor = 0;      // the rounding described above, for the max error
  double rms_floor = 0;  // and for the RMS error
};

ReferenceCheck check_against_reference(const Array& got, const Array& framework, const Array& reference, double factor);

// 2^-(mantissa bits + 1) of a float type: bf16 2^-8, f16 2^-11, f32 2^-24.
double unit_roundoff(const std::string& element);

}  // namespace kiln::array
