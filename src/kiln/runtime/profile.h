// Where a module's time goes, per dispatch, from the runtime's own profiling:
// iree-benchmark-module records device-timestamped dispatch events (GPUs) or
// host execution events (CPUs) into a .ireeprof bundle over many calls, and
// iree-profile aggregates them per dispatch function.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/runtime/runner.h"

namespace kiln::runtime {

struct DispatchTime {
  std::string name;        // "main_dispatch_0_matmul_256x4096x1024_f32"
  std::string op;          // "matmul"
  std::vector<int64_t> bounds;
  double launches_per_call = 0;
  double avg_us = 0;       // per launch
  double per_call_us = 0;  // launches_per_call * avg_us
  double share = 0;        // of the summed dispatch time per call
  double tflops = 0;       // achieved, for contractions whose name gives every loop bound
};

struct Profile {
  std::string source;       // "device dispatch events" or "host execution events"
  int calls = 0;
  double call_ms = 0;       // mean wall time per call while profiling
  double dispatch_ms = 0;   // summed dispatch time per call
  std::vector<DispatchTime> dispatches;  // most time first
};

// What a dispatch's name says: "main_dispatch_0_matmul_256x4096x1024_f32"
// -> op "matmul", bounds {256, 4096, 1024}, element "f32". Bounds are empty
// when the name gives none.
struct DispatchName {
  std::string op;
  std::vector<int64_t> bounds;
  std::string element;
};
DispatchName parse_dispatch_name(const std::string& name);

// Profiles `calls` back-to-back calls.
Result<Profile> profile(const toolchain::Toolchain& tools, compile::Executor& executor, const RunSpec& spec, int calls);

// Times the dispatch-benchmark modules the compiler dumps (one function per
// dispatch, launching it `batch` times per call on zero-filled buffers):
// per-dispatch device time where the driver has no native profiling.
// Launches per call are taken as 1.
Result<Profile> profile_dispatch_benchmarks(const toolchain::Toolchain& tools, compile::Executor& executor,
                                            const std::string& device, const std::vector<std::string>& runtime_flags,
                                            const std::vector<fs::path>& modules, int batch,
                                            std::chrono::milliseconds timeout, const fs::path& work_dir);

// One dispatch-benchmark module timed for the tuner: `repetitions` runs of
// at least `min_seconds` each, `batch` launches per timed call. Returns the
// time of one launch in ms: per benchmark function the median over the
// repetitions, summed over the module's functions (one per export).
struct DispatchBenchSpec {
  fs::path module;
  std::string device;
  std::vector<std::string> runtime_flags;
  int batch = 16;
  int repetitions = 5;
  double min_seconds = 0.02;
  std::chrono::milliseconds timeout{60000};
  fs::path work_dir;
};
Result<double> benchmark_dispatch(const toolchain::Toolchain& tools, compile::Executor& executor,
                                  const DispatchBenchSpec& spec);

// The per-launch time of a dispatch benchmark's JSON report: the median of
// each function's repetitions, summed over the functions (tested on its own).
Result<double> dispatch_report_ms(const nlohmann::json& report);

// "main_dispatch_0_cuda_nvptx_fb_main_dispatch_0_matmul_..." (a benchmark
// function) -> "main_dispatch_0_matmul_..." (the dispatch it launches).
std::string dispatch_of_benchmark(const std::string& function);

// Reads `iree-profile dispatch --format=jsonl` output (tested on its own).
Result<Profile> parse_dispatch_report(const std::string& jsonl, int calls);

nlohmann::json to_json(const Profile& profile);

// Floating-point operations of one launch, from the export's op and bounds
// (2 * product of bounds for matmul, batch_matmul and conv); 0 when unknown.
double flops_of(const std::string& op, const std::vector<int64_t>& bounds);

}  // namespace kiln::runtime
