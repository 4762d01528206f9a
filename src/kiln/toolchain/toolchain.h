// Finding the IREE toolchain and learning its version. kiln runs the real
// binaries inside the iree-base-compiler / iree-base-runtime wheels directly,
// not their Python entry points, so no interpreter starts per compile.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

namespace kiln::toolchain {

namespace fs = std::filesystem;

struct Toolchain {
  fs::path compile;           // iree-compile; empty in a runtime-only environment
  fs::path opt;               // iree-opt (prints bytecode as text)
  fs::path run_module;        // iree-run-module; empty when the runtime is missing
  fs::path benchmark_module;  // iree-benchmark-module
  fs::path profile;           // iree-profile (reads the runtime's profiling bundles); may be empty
  std::string release;        // the PyPI release, "3.13.0"
  std::string build;          // the compiler's own version, "3.13.0rc20261016"
  std::string revision;       // IREE git revision
  std::string runtime_release;  // release of the runtime wheel, "" when missing
  std::string found_by;       // "KILN_IREE_DIR", "config file ...", "project .venv", "PATH"
  fs::path root;              // the environment or folder it was found in
};

// The release kiln's target table was written for.
const char* pinned_release();

// Looks in order: the iree_dir setting; the project's .venv next to the
// kiln binary (build/kiln -> .venv) or in the working folder; PATH.
Result<Toolchain> find(const config::Config& config);

// Like find(), and also refuses a compiler of another release than the pinned
// one, since kiln's flags are those of the pinned release.
Result<Toolchain> find_pinned(const config::Config& config);

// Like find(), and requires the runtime tools (iree-run-module,
// iree-benchmark-module); a runtime-only environment is enough.
Result<Toolchain> find_runtime(const config::Config& config);

// Prints MLIR bytecode (or generic-form text) as pretty MLIR text with
// iree-opt, large constants elided and locations kept (they name arguments).
Result<std::string> print_as_text(const Toolchain& tools, const fs::path& file);

// The module of the first IR dump in a compiler's diagnostics (what
// --mlir-print-ir-before=... --mlir-print-ir-module-scope writes): the lines
// after the first "// -----// IR Dump" header up to the module's closing
// brace, and the location aliases (#loc...) after it. Anything else the
// compiler wrote after it (later dumps, errors) is left out.
Result<std::string> first_ir_dump(std::string_view diagnostics);

// Prints a StableHLO portable artifact (VHLO bytecode) as StableHLO text,
// constants and locations kept. No tool of the pinned release converts VHLO
// to StableHLO on its own: iree-compile does it first in its input phase,
// and prints the module there (before chlo-legalize-to-stablehlo, the first
// pass after it that can be named); the compile stops at flow.
Result<std::string> print_vhlo_as_stablehlo(const Toolchain& tools, const fs::path& file);

// Every place find() looked, for `kiln doctor`.
std::vector<std::string> search_locations(const config::Config& config);

}  // namespace kiln::toolchain
