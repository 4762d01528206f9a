// .npz archives: read from a file, as `--inputs` and `--expected` are.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/array/npy.h"
#include "kiln/util/file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto path = kiln::util::temp_root() / ("kiln-fuzz-npz-" + std::to_string(::getpid()) + ".npz");
  if (!kiln::util::write_file_atomic(path, std::string(reinterpret_cast<const char*>(data), size))) return 0;
  (void)kiln::array::read_npz(path);
  return 0;
}
