// Seeded inputs: the same seed gives the same bytes on every machine (the
// generator is kiln's own, not the standard library's distributions).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/array/array.h"

namespace kiln::array {

// Floats: normal, mean 0, standard deviation 0.5 (rounded to the type).
// Signed integers: uniform in [-10, 10]; unsigned: [0, 20]; i1: 0 or 1.
Array random_array(const std::string& element, const std::vector<int64_t>& shape, uint64_t seed);

}  // namespace kiln::array
