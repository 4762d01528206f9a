// .npz archives, as `--inputs` and `--expected` are read (from memory: the
// file reader is a thin wrapper over the same parser).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/array/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)kiln::array::parse_npz(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npz");
  return 0;
}
