// A dispatch-benchmark bundle: one small module per dispatch of a program,
// as the compiler writes them with --iree-hal-dump-executable-benchmarks-to,
// compiled for the target. Each module's functions launch one dispatch on
// zero-filled buffers; iree-benchmark-module times them on a host that has
// only the runtime. This is how `kiln profile` sees per-dispatch times where
// the runtime's driver has no native profiling (IREE 3.13's CUDA driver).
//
//   profile.json         "kiln-dispatch-bundle" v1: target, release, program, modules
//   <name>.vmfb          one per dumped executable
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "kiln/compile/compile.h"

namespace kiln::tune {

namespace fs = std::filesystem;

struct DispatchBundle {
  fs::path dir;
  std::string iree_release;
  std::string target_spec, runtime_device;
  std::string program_name, program_sha256;
  std::string tuning_record;          // the record applied to the program, "" if none
  std::vector<std::string> modules;   // file names inside dir
};

// Compiles the program as `kiln compile` would (tuning record included),
// dumps its dispatch benchmarks and compiles each; writes the bundle to
// `output` (a new folder) only when everything succeeded.
Result<DispatchBundle> prepare_dispatch_bundle(const fs::path& model, const mlir::ModuleInfo& module,
                                               const target::Target& target, const compile::Options& options,
                                               const fs::path& output, const toolchain::Toolchain& tools,
                                               compile::Executor& executor, const tuning::Database* tuning);

Result<DispatchBundle> read_dispatch_bundle(const fs::path& dir);

}  // namespace kiln::tune
