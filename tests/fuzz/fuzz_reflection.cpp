// What iree-dump-module prints for a module: a user's module decides the
// names and types in it.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/runtime/module.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view dump(reinterpret_cast<const char*>(data), size);
  (void)kiln::runtime::parse_reflection(dump, "fuzz.vmfb", "");
  (void)kiln::runtime::parse_reflection(dump, "fuzz.vmfb", "main");
  return 0;
}
