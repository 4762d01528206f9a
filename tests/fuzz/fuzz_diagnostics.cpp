// The compiler's stderr, as kiln summarizes it for an error message: the
// text a user's program (quoted in diagnostics) controls, megabyte lines
// included.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/compile/compile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)kiln::compile::summarize_diagnostics(text);
  (void)kiln::compile::summarize_diagnostics(text, 1);
  return 0;
}
