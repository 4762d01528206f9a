#include "kiln/array/array.h"

#include <cmath>
#include <complex>
#include <cstring>

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::array {
namespace {

float f16_to_float(uint16_t h) {
  uint32_t sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float value;
  if (exp == 0) value = std::ldexp(static_cast<float>(mant), -24);
  else if (exp == 31) value = mant ? NAN : INFINITY;
  else value = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  return sign ? -value : value;
}

uint16_t float_to_f16(float f) {
  if (std::isnan(f)) return 0x7e00;
  uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  float a = std::fabs(f);
  if (a >= 65520.0f) return sign | 0x7c00;
  if (a < std::ldexp(1.0f, -24) / 2) return sign;
  int e;
  std::frexp(a, &e);  // a = m * 2^e, m in [0.5, 1)
  int exp = e - 1 + 15;
  if (exp <= 0) return sign | static_cast<uint16_t>(std::nearbyint(std::ldexp(a, 24)));
  uint32_t mant = static_cast<uint32_t>(std::nearbyint(std::ldexp(a, 10 - (e - 1)))) - 0x400;
  if (mant == 0x400) {
    mant = 0;
    ++exp;
  }
  if (exp >= 31) return sign | 0x7c00;
  return sign | static_cast<uint16_t>(exp << 10) | static_cast<uint16_t>(mant);
}

float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f)) return 0x7fc0;
  bits += 0x7fff + ((bits >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

// f8 formats: (exponent bits, mantissa bits, bias, has infinities, NaN only at all-ones).
struct F8 {
  int exp_bits, mant_bits, bias;
  bool ieee;      // f8E5M2: IEEE-like with inf and NaN
  bool fnuz;      // no negative zero; 0x80 is NaN
};

const F8* f8_format(const std::string& e) {
  static const F8 e4m3fn{4, 3, 7, false, false}, e5m2{5, 2, 15, true, false}, e4m3fnuz{4, 3, 8, false, true},
      e5m2fnuz{5, 2, 16, false, true}, e4m3b11{4, 3, 11, false, true};
  if (e == "f8E4M3FN") return &e4m3fn;
  if (e == "f8E5M2") return &e5m2;
  if (e == "f8E4M3FNUZ") return &e4m3fnuz;
  if (e == "f8E5M2FNUZ") return &e5m2fnuz;
  if (e == "f8E4M3B11FNUZ") return &e4m3b11;
  return nullptr;
}

double f8_to_double(const F8& f, uint8_t v) {
  if (f.fnuz && v == 0x80) return NAN;
  int sign = v >> 7;
  int exp = (v >> f.mant_bits) & ((1 << f.exp_bits) - 1);
  int mant = v & ((1 << f.mant_bits) - 1);
  int max_exp = (1 << f.exp_bits) - 1;
  if (f.ieee && exp == max_exp) return mant ? NAN : (sign ? -INFINITY : INFINITY);
  if (!f.ieee && !f.fnuz && exp == max_exp && mant == (1 << f.mant_bits) - 1) return NAN;
  double value = exp == 0 ? std::ldexp(mant, 1 - f.bias - f.mant_bits)
                          : std::ldexp(mant | (1 << f.mant_bits), exp - f.bias - f.mant_bits);
  return sign ? -value : value;
}

uint8_t double_to_f8(const F8& f, double d) {
  // Exhaustive nearest search over the 256 codes: f8 conversion is rare
  // (random inputs), and this is correct for every format by construction.
  if (std::isnan(d)) return f.fnuz ? 0x80 : (f.ieee ? 0x7e : 0x7f);
  if (std::isinf(d)) {
    // Only the IEEE-like format has infinities; the others turn them into
    // NaN, as ml_dtypes does.
    if (f.ieee) return static_cast<uint8_t>((d < 0 ? 0x80 : 0) | (((1 << f.exp_bits) - 1) << f.mant_bits));
    return f.fnuz ? 0x80 : 0x7f;
  }
  uint8_t best = 0;
  double best_err = INFINITY;
  for (int code = 0; code < 256; ++code) {
    double v = f8_to_double(f, static_cast<uint8_t>(code));
    if (std::isnan(v)) continue;
    double err = std::fabs(v - d);
    if (err < best_err) {
      best_err = err;
      best = static_cast<uint8_t>(code);
    }
  }
  return best;
}

template <typename T>
T load(const Array& a, int64_t index, size_t offset = 0) {
  T v;
  std::memcpy(&v, a.data.data() + index * element_size(a.element) + offset, sizeof v);
  return v;
}

template <typename T>
void store(Array& a, int64_t index, T v, size_t offset = 0) {
  std::memcpy(a.data.data() + index * element_size(a.element) + offset, &v, sizeof v);
}

}  // namespace

int64_t Array::count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string Array::shape_text() const {
  std::vector<std::string> dims;
  for (int64_t d : shape) dims.push_back(std::to_string(d));
  return util::join(dims, "x");
}

size_t element_size(const std::string& e) {
  if (e == "i1" || e == "i8" || e == "ui8" || f8_format(e)) return 1;
  if (e == "i16" || e == "ui16" || e == "f16" || e == "bf16") return 2;
  if (e == "i32" || e == "ui32" || e == "f32") return 4;
  if (e == "i64" || e == "ui64" || e == "f64" || e == "complex<f32>") return 8;
  if (e == "complex<f64>") return 16;
  return 0;
}

bool is_float(const std::string& e) {
  return e == "f16" || e == "bf16" || e == "f32" || e == "f64" || f8_format(e) != nullptr;
}
bool is_complex(const std::string& e) { return util::starts_with(e, "complex<"); }
bool is_integer(const std::string& e) { return util::starts_with(e, "i") || util::starts_with(e, "ui"); }

double element_value(const Array& a, int64_t i) {
  const std::string& e = a.element;
  if (e == "f32" || e == "complex<f32>") return load<float>(a, i);
  if (e == "f64" || e == "complex<f64>") return load<double>(a, i);
  if (e == "f16") return f16_to_float(load<uint16_t>(a, i));
  if (e == "bf16") return bf16_to_float(load<uint16_t>(a, i));
  if (const F8* f = f8_format(e)) return f8_to_double(*f, load<uint8_t>(a, i));
  if (e == "i1") return load<uint8_t>(a, i) ? 1 : 0;
  if (e == "i8") return load<int8_t>(a, i);
  if (e == "ui8") return load<uint8_t>(a, i);
  if (e == "i16") return load<int16_t>(a, i);
  if (e == "ui16") return load<uint16_t>(a, i);
  if (e == "i32") return load<int32_t>(a, i);
  if (e == "ui32") return load<uint32_t>(a, i);
  if (e == "i64") return static_cast<double>(load<int64_t>(a, i));
  if (e == "ui64") return static_cast<double>(load<uint64_t>(a, i));
  return NAN;
}

double element_imag(const Array& a, int64_t i) {
  if (a.element == "complex<f32>") return load<float>(a, i, 4);
  if (a.element == "complex<f64>") return load<double>(a, i, 8);
  return 0;
}

void set_element(Array& a, int64_t i, double v) {
  const std::string& e = a.element;
  if (e == "f32" || e == "complex<f32>") store<float>(a, i, static_cast<float>(v));
  else if (e == "f64" || e == "complex<f64>") store<double>(a, i, v);
  else if (e == "f16") store<uint16_t>(a, i, float_to_f16(static_cast<float>(v)));
  else if (e == "bf16") store<uint16_t>(a, i, float_to_bf16(static_cast<float>(v)));
  else if (const F8* f = f8_format(e)) store<uint8_t>(a, i, double_to_f8(*f, v));
  else if (e == "i1") store<uint8_t>(a, i, v != 0 ? 1 : 0);
  else if (e == "i8") store<int8_t>(a, i, static_cast<int8_t>(v));
  else if (e == "ui8") store<uint8_t>(a, i, static_cast<uint8_t>(v));
  else if (e == "i16") store<int16_t>(a, i, static_cast<int16_t>(v));
  else if (e == "ui16") store<uint16_t>(a, i, static_cast<uint16_t>(v));
  else if (e == "i32") store<int32_t>(a, i, static_cast<int32_t>(v));
  else if (e == "ui32") store<uint32_t>(a, i, static_cast<uint32_t>(v));
  else if (e == "i64") store<int64_t>(a, i, static_cast<int64_t>(v));
  else if (e == "ui64") store<uint64_t>(a, i, static_cast<uint64_t>(v));
}

std::string index_text(const std::vector<int64_t>& shape, int64_t flat) {
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = shape[d] ? flat % shape[d] : 0;
    flat = shape[d] ? flat / shape[d] : 0;
  }
  std::vector<std::string> parts;
  for (int64_t i : idx) parts.push_back(std::to_string(i));
  return "[" + util::join(parts, ", ") + "]";
}

Status convert(Array& a, const std::string& element, const std::string& what) {
  if (a.element == element) return {};
  bool floats = is_float(a.element) && is_float(element);
  bool ints = is_integer(a.element) && is_integer(element);
  if ((!floats && !ints) || element_size(element) == 0) {
    return fail(Code::kInvalidArgument, fmt::format("{} has element type {}, which kiln does not convert to {}", what,
                                                    a.element, element));
  }
  Array out{element, a.shape, std::vector<uint8_t>(static_cast<size_t>(a.count()) * element_size(element))};
  for (int64_t i = 0; i < a.count(); ++i) {
    double v = element_value(a, i);
    set_element(out, i, v);
    if (ints && element_value(out, i) != v) {
      return fail(Code::kInvalidArgument, fmt::format("{}: element {} ({}) does not fit in {}, the type the module "
                                                      "computes in", what, index_text(a.shape, i), v, element));
    }
  }
  a = std::move(out);
  return {};
}

}  // namespace kiln::array
