// Runs one function of a module through the pinned runtime's tools
// (iree-run-module, iree-benchmark-module). Values cross as raw bytes with
// their shape and type on the command line, which works for every element
// type (the runtime's .npy reader has no bf16 or f8).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/array/array.h"
#include "kiln/runtime/module.h"

namespace kiln::runtime {

struct RunSpec {
  ModuleSignature signature;
  std::string device;  // IREE device URI
  std::vector<array::Array> inputs;
  fs::path work_dir;   // scratch for the raw value files
  std::chrono::milliseconds timeout{0};
  // Runtime options (allocator, streams, ...): the module's deployment
  // recipe unless the user chose others.
  std::vector<std::string> runtime_flags = {};
};

// Whether tools running on `device` need the host's GPUs (for containers).
bool wants_gpu(const std::string& device);

// Checks inputs against the signature: count, element type, shape (dynamic
// dimensions match any size).
Status check_inputs(const ModuleSignature& signature, const std::vector<array::Array>& inputs);

// The --input= flags for `inputs` (writing their bytes into work_dir).
Result<std::vector<std::string>> input_flags(const std::vector<array::Array>& inputs, const fs::path& work_dir);

// Runs the function once; returns its outputs.
Result<std::vector<array::Array>> run(const toolchain::Toolchain& tools, compile::Executor& executor, const RunSpec& spec);


struct BenchSpec {
  RunSpec run;
  int warmup = 5;        // leading runs discarded
  int repetitions = 100; // runs measured, one invocation each
  int concurrency = 1;   // benchmark processes at once
};

// Per-invocation wall times in milliseconds, from iree-benchmark-module
// (one iteration per repetition, so every sample is one call).
Result<std::vector<double>> benchmark(const toolchain::Toolchain& tools, compile::Executor& executor,
                                      const BenchSpec& spec);


// The wall time of one row of iree-benchmark-module's JSON report, in ms.
double benchmark_row_ms(const nlohmann::json& row);

// The figure that matters for deployment: the mean time per call over many
// back-to-back calls with device-resident inputs, in milliseconds, once per
// repetition (each repetition runs calls for at least `min_seconds`).
// Calls to an asynchronous module are queued kAsyncBatch at a time, chained
// by fences, with one wait per batch.
inline constexpr int kAsyncBatch = 32;
struct AmortizedSpec {
  RunSpec run;
  double min_seconds = 0.2;
  int repetitions = 3;
};
Result<std::vector<double>> benchmark_amortized(const toolchain::Toolchain& tools, compile::Executor& executor,
                                                const AmortizedSpec& spec);

}  // namespace kiln::runtime
