// Job files: parse, schema, resolution (targets, inputs, output names), from
// the text in memory; only the model the jobs name is a file, made once.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "kiln/job/job.h"
#include "kiln/util/file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = [] {
    auto d = kiln::util::temp_root() / ("kiln-fuzz-job-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    (void)kiln::util::write_file_atomic(d / "model.mlir", "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {\n"
                                                          "  return %a : tensor<4xf32>\n}\n");
    return d;
  }();
  (void)kiln::job::parse(std::string_view(reinterpret_cast<const char*>(data), size), dir / "job.json");
  return 0;
}
