#include "kiln/array/random.h"

#include <cmath>
#include <cstring>

#include "kiln/util/strings.h"

namespace kiln::array {
namespace {

// splitmix64: small, fast, and fully specified.
struct Rng {
  uint64_t state;
  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }  // [0, 1)
  double normal() {
    double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(6.283185307179586 * u2);
  }
};

}  // namespace

Array random_array(const std::string& element, const std::vector<int64_t>& shape, uint64_t seed) {
  Array a{element, shape, {}};
  a.data.resize(static_cast<size_t>(a.count()) * element_size(element));
  Rng rng{seed};
  bool complex = is_complex(element);
  for (int64_t i = 0; i < a.count(); ++i) {
    double v;
    if (is_float(element) || complex) {
      v = 0.5 * rng.normal();
    } else if (element == "i1") {
      v = static_cast<double>(rng.next() & 1);
    } else if (util::starts_with(element, "ui")) {
      v = static_cast<double>(rng.next() % 21);
    } else {
      v = static_cast<double>(rng.next() % 21) - 10;
    }
    set_element(a, i, v);
    if (complex) {
      // The imaginary half follows the real one.
      double imag = 0.5 * rng.normal();
      size_t half = element_size(element) / 2;
      if (half == 4) {
        float f = static_cast<float>(imag);
        std::memcpy(a.data.data() + i * 8 + 4, &f, 4);
      } else {
        std::memcpy(a.data.data() + i * 16 + 8, &imag, 8);
      }
    }
  }
  return a;
}

}  // namespace kiln::array
