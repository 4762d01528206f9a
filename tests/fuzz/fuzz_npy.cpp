// .npy bytes (an input a user passes to run/validate/bench, or an upload).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/array/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = kiln::array::parse_npy(std::string_view(reinterpret_cast<const char*>(data), size));
  if (parsed) (void)kiln::array::serialize_npy(*parsed);
  return 0;
}
