// jax.export's serialized Exported (a FlatBuffer from a user's file): every
// offset and length it holds is checked before it is followed.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kiln/mlir/jax_serialized.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!kiln::mlir::is_jax_exported(bytes)) return 0;
  auto e = kiln::mlir::read_jax_exported(bytes);
  if (e) (void)e->symbolic_dims();
  (void)kiln::mlir::bind_vhlo_platform_index(bytes, 1);
  return 0;
}
