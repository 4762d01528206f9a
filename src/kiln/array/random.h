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

// The seed of input `index` when a function's inputs are generated from one
// seed (`kiln run --seed`, `kiln tune measure`): the same everywhere.
inline uint64_t input_seed(uint64_t seed, size_t index) { return seed * 1000003u + index; }

}  // namespace kiln::array
