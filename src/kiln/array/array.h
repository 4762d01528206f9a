// N-dimensional arrays as kiln moves them between .npy files and IREE: an
// element type in StableHLO spelling, a shape, and row-major bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::array {

struct Array {
  std::string element;          // "f32", "bf16", "i1", "ui8", "complex<f32>", ...
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;    // row-major (C order), little-endian

  int64_t count() const;        // number of elements
  std::string shape_text() const;  // "4x8", "" for a scalar
};

// Bytes of one element, or 0 for a type kiln cannot hold (sub-byte types).
size_t element_size(const std::string& element);
bool is_float(const std::string& element);    // f16, bf16, f32, f64, f8*
bool is_complex(const std::string& element);
bool is_integer(const std::string& element);  // i*, ui*, including i1

// The value of element `index` as a double (the real part for complex).
double element_value(const Array& a, int64_t index);
// The imaginary part (0 for real types).
double element_imag(const Array& a, int64_t index);
// Stores `value` (rounded to the element type) at `index`.
void set_element(Array& a, int64_t index, double value);

// Converts every element to `element` (f64 -> f32, i64 -> i32, ...), which
// must be of the same kind (float to float, integer to integer); an integer
// that does not fit is an error naming `what` and the index.
Status convert(Array& a, const std::string& element, const std::string& what);

// "[1, 0, 3]" for a flat index into `shape`.
std::string index_text(const std::vector<int64_t>& shape, int64_t flat);

}  // namespace kiln::array
