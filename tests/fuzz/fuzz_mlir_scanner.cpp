// The StableHLO text scanner behind `kiln inspect` and every compile.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/mlir/scanner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)kiln::mlir::scan_text(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
