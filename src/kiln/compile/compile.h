// One compile unit: a StableHLO file and a target in, a .vmfb and its
// metadata record out. Output files appear only complete, and a failed
// compile leaves only its log (NAME.TARGET.log) in the output folder.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/cache/shared.h"
#include "kiln/cache/store.h"
#include "kiln/compile/diagnostics.h"  // summarize_diagnostics, for callers of the compiler
#include "kiln/compile/executor.h"
#include "kiln/compile/record.h"
#include "kiln/mlir/jax_export.h"
#include "kiln/mlir/module_info.h"
#include "kiln/target/target.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/tuning/database.h"

namespace kiln::compile {

namespace fs = std::filesystem;

struct Options {
  std::string opt_level;            // "", "O0".."O3"
  std::optional<bool> data_tiling;  // unset: the compiler's default
  std::vector<std::string> extra_flags;  // passed through verbatim, recorded
  std::chrono::milliseconds timeout{0};
  // "" or "highest": the compiler's own numerics. "f16-inputs" and
  // "bf16-inputs": contractions take narrow inputs and accumulate in f32.
  std::string precision;
  // "" or "sync": each call returns when its results are ready. "async": the
  // module's functions take a wait and a signal fence (IREE's coarse-fences
  // ABI), so a caller can queue calls back to back and wait once.
  std::string invocation;
  // Apply the tuning record for this program and target, when there is one.
  bool use_tuning = true;
  // Keep f64 as f64 (IREE computes it as f32 by default); refused for
  // targets without f64 arithmetic.
  bool keep_f64 = false;
  // A folder of executable configurations (<executable>.mlir) to compile in
  // place of the compiler's own; set by the tuner for its candidates.
  fs::path executable_configs;
};

// The precision policies, in the order `kiln targets` and errors list them.
const std::vector<std::string>& precision_policies();
// The policy's name as records and metadata spell it ("" -> "highest").
std::string precision_name(const std::string& precision);

// The calling conventions, and their names in records and metadata.
const std::vector<std::string>& invocation_models();
std::string invocation_name(const std::string& invocation);

struct Unit {
  fs::path input;
  std::string name;  // output base name
  target::Target target;
  fs::path output_dir;
  const std::atomic<bool>* cancel = nullptr;  // set from another thread: stop this unit
  std::string input_sha256;  // when the caller hashed the input already (one input, many targets)
  // Sizes for a JAX export's symbolic dimensions: the module is specialized
  // to them (static shapes) and named NAME.<slug>.TARGET. Empty: dynamic.
  mlir::Binding binding;
};

struct Outcome {
  fs::path module_path;
  fs::path metadata_path;
  ModuleRecord record;  // the metadata, checked; record.json is the file's content
  bool cache_hit = false;
  std::string cache_source;       // on a hit: "local" or "shared"
  std::string cache_explanation;  // with CacheUse::explain, why a lookup missed
  std::string warning;            // a problem that did not fail the unit (the cache was full, ...)
  std::string note;               // a fresh compile that needed fallbacks (compile/fallback.h): which and why
};

struct CacheUse {
  cache::Store* store = nullptr;  // null: no cache (--no-cache)
  bool explain = false;
  cache::Shared* shared = nullptr;   // the fleet's cache, looked up after the local one
  cache::KeyLocks* locks = nullptr;  // one compile of a key at a time, fleet-wide
};

// Who chose the options. A local user may pass any compiler flag to their
// own compiler. A remote client of `kiln serve` may not make the service's
// compiler read or write files it names (dumps, substitutions, tuning specs,
// output paths), which would write where the client chooses or change what
// the shared cache holds, or run a program: only options of the compiler's
// optimization and code-generation phases that name no file pass.
enum class Origin { kLocalUser, kRemoteClient };

// Checks option values; the error names the option.
Status validate(const Options& options, Origin origin = Origin::kLocalUser);

// The flags kiln adds for `options` (after the target's flags).
std::vector<std::string> option_flags(const Options& options);

// The options that are part of a tuning record's identity: option_flags
// without the precision policy and the calling convention (which the
// identity names on their own).
std::vector<std::string> tuning_options(const Options& options);

// The output base name of a unit: NAME.TARGET, or NAME.b8.TARGET with a binding.
std::string unit_base_name(const Unit& unit);

// "model.vhlo.mlirbc" -> "model": the default output base name.
std::string default_name(const fs::path& input);

// Compiles one unit. `module` is the inspected input (for the signatures
// recorded in the metadata). With a tuning database, the record for this
// program, target, release and precision (if any) is applied: its compiler
// options and executable configurations go into the compile and the cache
// key, and the metadata records what was chosen and its deployment recipe.
Result<Outcome> run(const Unit& unit, const Options& options, const mlir::ModuleInfo& module,
                    const toolchain::Toolchain& tools, Executor& executor, const CacheUse& cache = {},
                    const tuning::Database* tuning = nullptr);

// JSON for a module's functions, shared by `inspect --json` and metadata.
nlohmann::json functions_json(const mlir::ModuleInfo& module);

}  // namespace kiln::compile
