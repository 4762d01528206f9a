// The tuner's three steps, which may run on different hosts:
//   prepare (compiler host): the candidate set, compiled into a bundle;
//   measure (device host, runtime only): every candidate checked against the
//     reference module's outputs and benchmarked, into results.json;
//   apply: the fastest correct candidate becomes the tuning record that
//     `kiln compile` uses from then on.
// Round 1 explores each level on its own: runtime options and whole-program
// options on the whole program, and each distinct executable's
// configurations on that executable alone (its benchmark program; see
// dispatches.h). Round 2 (prepare --from the round-1 results) compiles the
// whole program with every executable's winner and measures it, checked
// against the reference, with the best program and runtime options.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <ostream>
#include <string>

#include "kiln/compile/compile.h"
#include "kiln/compile/executor.h"
#include "kiln/compile/pool.h"
#include "kiln/mlir/module_info.h"
#include "kiln/target/target.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/tune/bundle.h"
#include "kiln/tuning/database.h"

namespace kiln::tune {

using Log = std::function<void(const std::string&)>;

struct PrepareOptions {
  fs::path model;
  const mlir::ModuleInfo* module = nullptr;  // the inspected model
  target::Target target;
  fs::path output;          // the bundle folder: must not hold a bundle yet
  std::string precision;    // a compile::precision_policies() name, "" = highest
  std::string invocation;   // a compile::invocation_models() name, "" = sync
  // The user's compiler options (optimization level, data tiling, f64,
  // extra flags): every candidate is built with them, and the record they
  // make applies only to compiles with the same (compile::tuning_options).
  compile::Options compile;
  size_t per_dispatch = 24; // configurations tried per dispatch
  // At most this many dispatch candidates in round 1, shared among the
  // executables (dispatches.h share_budget): bounds prepare's compiles and
  // measure's runs.
  size_t max_dispatch_candidates = 240;
  std::ostream* progress = nullptr;  // where the progress bar goes (stderr), or none
  bool terminal = false;             // `progress` is a terminal: redraw a bar in place
  compile::PoolOptions pool;
  fs::path from;            // round 2: the round-1 results file (its bundle is its folder)
  uint64_t seed = 0;
  std::chrono::milliseconds compile_timeout{0};
};

// Builds the bundle in a staging folder next to `output` and renames it
// into place when complete: a failed prepare leaves nothing.
Result<Bundle> prepare(const PrepareOptions& options, const toolchain::Toolchain& tools, compile::Executor& executor,
                       const Log& log);

struct MeasureOptions {
  fs::path bundle;
  std::string device;        // "" = the bundle's runtime device
  fs::path results;          // "" = BUNDLE/results.json
  double min_seconds = 0.2;  // per repetition of back-to-back calls
  int repetitions = 3;
  // Dispatch candidates (round 1): timed alone, `dispatch_repetitions` runs
  // of at least `dispatch_min_seconds`, `dispatch_batch` launches per call.
  double dispatch_min_seconds = 0.02;
  int dispatch_repetitions = 5;
  int dispatch_batch = 16;
  bool p50 = false;          // also measure per-call p50 (always in round 2)
  bool any_device = false;   // measure on a GPU other than the bundle's
  std::chrono::milliseconds candidate_timeout{120000};
  std::ostream* progress = nullptr;
  bool terminal = false;
};

// Measures every candidate not yet in the results file (resumable); a
// candidate that fails, hangs or gives wrong outputs is recorded and skipped.
Result<Results> measure(const MeasureOptions& options, const toolchain::Toolchain& tools, compile::Executor& executor,
                        const Log& log);

// Picks the fastest correct candidate of `results` (its bundle is the
// results file's folder unless `bundle` is given) and stores it.
Result<tuning::Record> apply(const fs::path& results, const fs::path& bundle, tuning::Database& db);

// How to deploy with these runtime options: the iree-run-module flags and
// the Python runtime's settings, one line each.
std::vector<std::string> deployment_lines(const std::string& runtime_device, const std::vector<std::string>& runtime_flags);

// The fastest correct measurement of a whole-program candidate (dispatch
// candidates time one executable, not the program), or null.
const Measurement* fastest(const Results& results, const Bundle& bundle);

}  // namespace kiln::tune
