#include "kiln/runtime/runner.h"

#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "kiln/array/npy.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"

namespace kiln::runtime {
namespace {

// The runtime's error without its stack of "while ..." frames.
std::string runtime_error(const std::string& err) {
  std::string first = std::string(util::trim(err));
  if (first.size() > 1500) first = first.substr(0, 1500) + "...";
  return first;
}

}  // namespace

Status check_inputs(const ModuleSignature& sig, const std::vector<array::Array>& inputs) {
  if (inputs.size() != sig.inputs.size()) {
    return fail(Code::kInvalidArgument, fmt::format("@{} takes {} input(s), but {} were given", sig.function,
                                                    sig.inputs.size(), inputs.size()));
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const auto& want = sig.inputs[i].type;
    const auto& got = inputs[i];
    if (!want.is_tensor) return fail(Code::kInvalidArgument, fmt::format("{} has type {}, which kiln cannot pass", value_label(sig.inputs[i], i, "input"), want.text()));
    if (got.element != want.element) {
      return fail(Code::kInvalidArgument, fmt::format("{} must be {}, but the value given is {}",
                                                      value_label(sig.inputs[i], i, "input"), want.element, got.element));
    }
    bool shape_ok = got.shape.size() == want.dims.size();
    for (size_t d = 0; shape_ok && d < want.dims.size(); ++d) {
      shape_ok = want.dims[d] == mlir::kDynamic || want.dims[d] == got.shape[d];
    }
    if (!shape_ok) {
      return fail(Code::kInvalidArgument, fmt::format("{} must have shape {}, but the value given has shape ({})",
                                                      value_label(sig.inputs[i], i, "input"), want.text(), got.shape_text()));
    }
  }
  return {};
}

Result<std::vector<std::string>> input_flags(const std::vector<array::Array>& inputs, const fs::path& relative_dir) {
  // Absolute: the tool runs with the work folder as its working directory.
  fs::path work_dir = fs::absolute(relative_dir);
  std::vector<std::string> flags;
  for (size_t i = 0; i < inputs.size(); ++i) {
    fs::path file = work_dir / fmt::format("input{}.bin", i);
    const auto& a = inputs[i];
    KILN_TRY_STATUS(util::write_file_atomic(file, std::string_view(reinterpret_cast<const char*>(a.data.data()), a.data.size())));
    std::string shape = a.shape_text();
    flags.push_back(fmt::format("--input={}{}{}=@{}", shape, shape.empty() ? "" : "x", a.element, file.string()));
  }
  return flags;
}

bool wants_gpu(const std::string& device) { return util::starts_with(device, "cuda") || util::starts_with(device, "hip"); }

Result<std::vector<array::Array>> run(const toolchain::Toolchain& tools, compile::Executor& executor, const RunSpec& spec) {
  const auto& sig = spec.signature;
  KILN_TRY_STATUS(check_inputs(sig, spec.inputs));
  std::vector<std::string> argv = {tools.run_module.string(), "--module=" + fs::absolute(sig.path).string(),
                                   "--device=" + spec.device, "--function=" + sig.function};
  argv.insert(argv.end(), spec.runtime_flags.begin(), spec.runtime_flags.end());
  auto inputs = KILN_TRY(input_flags(spec.inputs, spec.work_dir));
  argv.insert(argv.end(), inputs.begin(), inputs.end());
  // Static outputs come back as raw bytes (any type); dynamic ones as .npy,
  // whose header carries the shape the run produced.
  std::vector<fs::path> files;
  for (size_t i = 0; i < sig.outputs.size(); ++i) {
    bool dynamic = sig.outputs[i].type.has_dynamic_dims();
    files.push_back(fs::absolute(spec.work_dir) / fmt::format("output{}.{}", i, dynamic ? "npy" : "bin"));
    argv.push_back("--output=@" + files.back().string());
  }
  auto result = executor.run({argv, sig.path, spec.work_dir, spec.timeout, {}, wants_gpu(spec.device)});
  if (!result) return tl::unexpected(result.error());
  if (result->timed_out) {
    return fail(Code::kDeadlineExceeded, fmt::format("running @{} ran past the time limit and was killed", sig.function));
  }
  if (!result->ok()) {
    return fail(Code::kInvalidArgument, fmt::format("the runtime failed to run @{} of {} on device '{}' ({}): {}",
                                                    sig.function, sig.path.string(), spec.device,
                                                    util::describe_outcome(*result), runtime_error(result->err)));
  }
  std::vector<array::Array> outputs;
  for (size_t i = 0; i < files.size(); ++i) {
    const auto& type = sig.outputs[i].type;
    if (!type.is_tensor) return fail(Code::kInvalidArgument, "output " + std::to_string(i) + " has type " + type.text() + ", which kiln cannot read");
    if (files[i].extension() == ".npy") {
      auto a = KILN_TRY(array::read_npy(files[i]));
      KILN_TRY_STATUS(array::reinterpret(a, type.element, "output " + std::to_string(i)));
      outputs.push_back(std::move(a));
      continue;
    }
    auto bytes = KILN_TRY(util::read_file(files[i]));
    array::Array a{type.element, type.dims, {}};
    a.data.assign(bytes.begin(), bytes.end());
    if (a.data.size() != static_cast<size_t>(a.count()) * array::element_size(a.element)) {
      return fail(Code::kInternal, fmt::format("output {} has {} bytes, expected {} for {}", i, a.data.size(),
                                               a.count() * array::element_size(a.element), type.text()));
    }
    outputs.push_back(std::move(a));
  }
  return outputs;
}

}  // namespace kiln::runtime

namespace kiln::runtime {

double benchmark_row_ms(const nlohmann::json& row) {
  std::string unit = row.contains("time_unit") && row["time_unit"].is_string() ? row["time_unit"].get<std::string>() : "ns";
  double scale = unit == "ns" ? 1e-6 : unit == "us" ? 1e-3 : unit == "ms" ? 1 : 1e3;
  return row.contains("real_time") && row["real_time"].is_number() ? row["real_time"].get<double>() * scale : 0;
}

namespace {

// iree-benchmark-module on one function with its inputs, JSON out.
Result<std::vector<std::string>> benchmark_argv(const toolchain::Toolchain& tools, const RunSpec& run, int repetitions,
                                                const std::string& min_time) {
  std::vector<std::string> argv = {tools.benchmark_module.string(), "--module=" + fs::absolute(run.signature.path).string(),
                                   "--device=" + run.device, "--function=" + run.signature.function,
                                   fmt::format("--benchmark_repetitions={}", repetitions),
                                   "--benchmark_min_time=" + min_time, "--benchmark_format=json",
                                   "--benchmark_enable_random_interleaving=false"};
  argv.insert(argv.end(), run.runtime_flags.begin(), run.runtime_flags.end());
  auto inputs = KILN_TRY(input_flags(run.inputs, run.work_dir));
  argv.insert(argv.end(), inputs.begin(), inputs.end());
  return argv;
}

}  // namespace

Result<std::vector<double>> benchmark(const toolchain::Toolchain& tools, compile::Executor& executor,
                                      const BenchSpec& spec) {
  const auto& sig = spec.run.signature;
  KILN_TRY_STATUS(check_inputs(sig, spec.run.inputs));
  if (tools.benchmark_module.empty()) {
    return fail(Code::kFailedPrecondition, "iree-benchmark-module is missing; install iree-base-runtime");
  }
  auto argv = KILN_TRY(benchmark_argv(tools, spec.run, spec.warmup + spec.repetitions, "1x"));

  int n = std::max(1, spec.concurrency);
  std::vector<Result<util::ProcessResult>> results(n, fail(Code::kInternal, "not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      try {
        results[i] = executor.run({argv, sig.path, spec.run.work_dir, spec.run.timeout, {}, wants_gpu(spec.run.device)});
      } catch (const std::exception& e) {
        results[i] = fail(Code::kInternal, std::string("internal error while benchmarking: ") + e.what());
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<double> samples;
  for (auto& r : results) {
    if (!r) return tl::unexpected(r.error());
    if (r->timed_out) return fail(Code::kDeadlineExceeded, "the benchmark ran past its time limit and was killed");
    if (!r->ok()) {
      return fail(Code::kInvalidArgument, fmt::format("iree-benchmark-module failed on device '{}' ({}): {}",
                                                      spec.run.device, util::describe_outcome(*r), runtime_error(r->err)));
    }
    nlohmann::json report;
    try {
      report = nlohmann::json::parse(r->out);
    } catch (const std::exception& e) {
      return fail(Code::kInternal, std::string("cannot read iree-benchmark-module's JSON: ") + e.what());
    }
    int seen = 0;
    for (const auto& b : report["benchmarks"]) {
      if (b.value("run_type", "") != "iteration") continue;
      if (seen++ < spec.warmup) continue;
      samples.push_back(benchmark_row_ms(b));
    }
  }
  return samples;
}

Result<std::vector<double>> benchmark_amortized(const toolchain::Toolchain& tools, compile::Executor& executor,
                                                const AmortizedSpec& spec) {
  const auto& sig = spec.run.signature;
  KILN_TRY_STATUS(check_inputs(sig, spec.run.inputs));
  if (tools.benchmark_module.empty()) {
    return fail(Code::kFailedPrecondition, "iree-benchmark-module is missing; install iree-base-runtime");
  }
  // Google Benchmark grows the iteration count until a repetition lasts
  // min_seconds; its probe runs absorb the first calls' warm-up.
  auto argv = KILN_TRY(benchmark_argv(tools, spec.run, std::max(1, spec.repetitions), fmt::format("{}s", spec.min_seconds)));
  // A module with the asynchronous convention is timed as it is deployed:
  // calls chained by fences, one wait per batch. (A synchronous function
  // must not get a batch size: the tool would divide one call's time by it.)
  if (sig.invocation == "async") argv.push_back(fmt::format("--batch_size={}", kAsyncBatch));
  auto r = KILN_TRY(executor.run({argv, sig.path, spec.run.work_dir, spec.run.timeout, {}, wants_gpu(spec.run.device)}));
  if (r.timed_out) return fail(Code::kDeadlineExceeded, "the benchmark ran past its time limit and was killed");
  if (!r.ok()) {
    return fail(Code::kInvalidArgument, fmt::format("iree-benchmark-module failed on device '{}' ({}): {}", spec.run.device,
                                                    util::describe_outcome(r), runtime_error(r.err)));
  }
  nlohmann::json report = nlohmann::json::parse(r.out, nullptr, false);
  if (report.is_discarded() || !report.contains("benchmarks") || !report["benchmarks"].is_array()) {
    return fail(Code::kInternal, "cannot read iree-benchmark-module's JSON report");
  }
  std::vector<double> means;
  for (const auto& b : report["benchmarks"]) {
    if (!b.is_object() || b.value("run_type", "") != "iteration" || !b.contains("real_time") || !b["real_time"].is_number()) continue;
    means.push_back(benchmark_row_ms(b));
  }
  if (means.empty()) return fail(Code::kInternal, "iree-benchmark-module reported no measurement");
  return means;
}

}  // namespace kiln::runtime
