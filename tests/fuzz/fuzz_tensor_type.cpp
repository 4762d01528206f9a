// Tensor types as they appear in signatures, metadata and --shape.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/mlir/types.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = kiln::mlir::parse_type(text);
  if (t) (void)t->text();
  (void)kiln::mlir::normalize_element_type(text);
  return 0;
}
