// The compiler's stderr, as kiln summarizes it for an error message and
// reads hints from: the text a user's program (quoted in diagnostics)
// controls, megabyte lines included.
#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/compile/compile.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kiln::target::Target cpu = *kiln::target::resolve("cpu");
  static const kiln::target::Target vulkan = *kiln::target::resolve("vulkan:ampere");
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)kiln::compile::summarize_diagnostics(text);
  (void)kiln::compile::summarize_diagnostics(text, 1);
  (void)kiln::compile::hint(text, cpu, {});
  (void)kiln::compile::hint(text, vulkan, {"--iree-input-demote-f64-to-f32=false"});
  kiln::util::ProcessResult result;
  result.exit_status = 1;
  result.err = text;
  (void)kiln::compile::describe_failure(result, {"compiling m.mlir for cpu", cpu, {}, "m.mlir", "/m.mlir", "m.cpu.log", ".", 1});
  return 0;
}
