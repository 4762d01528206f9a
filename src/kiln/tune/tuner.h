// The tuner's three steps, which may run on different hosts:
//   prepare (compiler host): the candidate set, compiled into a bundle;
//   measure (device host, runtime only): every candidate checked against the
//     reference module's outputs and benchmarked, into results.json;
//   apply: the fastest correct candidate becomes the tuning record that
//     `kiln compile` uses from then on.
// Round 1 explores each level on its own (runtime options, whole-program
// options, each dispatch's configuration); round 2 (prepare --from the
// round-1 results) combines the winners and measures the combinations.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

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
  size_t per_dispatch = 24; // configurations tried per dispatch
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
  bool p50 = false;          // also measure per-call p50 (always in round 2)
  bool any_device = false;   // measure on a GPU other than the bundle's
  std::chrono::milliseconds candidate_timeout{120000};
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

// The fastest correct measurement, or null.
const Measurement* fastest(const Results& results);

}  // namespace kiln::tune
