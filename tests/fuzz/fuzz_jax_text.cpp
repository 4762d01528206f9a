// The rewrites of a shape-polymorphic JAX export's text (a user's file):
// broadcast annotations, bindings and the platform index.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/mlir/jax_export.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)kiln::mlir::is_shape_polymorphic(text);
  (void)kiln::mlir::symbolic_dims(text);
  size_t n = 0;
  (void)kiln::mlir::annotate_dynamic_broadcasts(text, &n);
  (void)kiln::mlir::bind_dims(text, {{"b", 3}, {"n", 5}});
  (void)kiln::mlir::has_platform_index(text);
  (void)kiln::mlir::bind_platform_index(text, 1);
  return 0;
}
