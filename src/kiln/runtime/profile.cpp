#include "kiln/runtime/profile.h"

#include <algorithm>
#include <cctype>
#include <map>

#include <fmt/format.h>

#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"

namespace kiln::runtime {
namespace {

bool on_host(const std::string& device) { return util::starts_with(device, "local"); }

// Fills in what follows from a row's name and time, and counts it.
void add(Profile& p, DispatchTime d) {
  auto parsed = parse_dispatch_name(d.name);
  d.op = parsed.op;
  d.bounds = parsed.bounds;
  double flops = flops_of(d.op, d.bounds);
  if (flops > 0 && d.avg_us > 0) d.tflops = flops / (d.avg_us * 1e-6) / 1e12;
  p.dispatch_ms += d.per_call_us / 1e3;
  p.dispatches.push_back(std::move(d));
}

// Shares of the summed time, most time first.
Result<Profile> finish(Profile p, const char* when_empty) {
  if (p.dispatches.empty()) return fail(Code::kInternal, when_empty);
  for (auto& d : p.dispatches) d.share = p.dispatch_ms > 0 ? d.per_call_us / 1e3 / p.dispatch_ms : 0;
  std::sort(p.dispatches.begin(), p.dispatches.end(), [](const auto& a, const auto& b) { return a.per_call_us > b.per_call_us; });
  return p;
}

}  // namespace

DispatchName parse_dispatch_name(const std::string& name) {
  DispatchName out;
  auto tokens = util::split(name, '_');
  std::vector<std::string> kind;
  bool after_index = false;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    if (!after_index) {
      bool digits = !t.empty() && t.find_first_not_of("0123456789") == std::string::npos;
      after_index = digits && i > 0 && tokens[i - 1] == "dispatch";
      continue;
    }
    bool sizes = !t.empty() && std::isdigit(static_cast<unsigned char>(t[0])) && t.find_first_not_of("0123456789x") == std::string::npos;
    if (!sizes) {
      kind.push_back(t);
      continue;
    }
    for (const auto& n : util::split(t, 'x')) out.bounds.push_back(std::atoll(n.c_str()));
    if (i + 1 < tokens.size()) out.element = tokens[i + 1];
    break;
  }
  out.op = util::join(kind, "_");
  return out;
}

double flops_of(const std::string& op, const std::vector<int64_t>& bounds) {
  bool contraction = op == "matmul" || op == "batch_matmul" || op == "conv" || util::starts_with(op, "matmul_transpose") ||
                     util::starts_with(op, "batch_matmul_transpose");
  if (!contraction || bounds.size() < 3) return 0;
  double f = 2;
  for (int64_t b : bounds) f *= static_cast<double>(b);
  return f;
}

Result<Profile> parse_dispatch_report(const std::string& jsonl, int calls) {
  Profile p;
  p.calls = calls;
  for (const auto& line : util::split(jsonl, '\n')) {
    if (util::trim(line).empty()) continue;
    auto row = nlohmann::json::parse(line, nullptr, false);
    if (row.is_discarded() || !row.is_object() || !row.contains("type") || !row["type"].is_string()) continue;
    if (!row.contains("total_ns") || !row["total_ns"].is_number() || !row.contains("key") || !row["key"].is_string()) continue;
    std::string type = row.value("type", "");
    if (type != "dispatch_group" && type != "host_dispatch_group") continue;
    if (p.source.empty()) p.source = type == "dispatch_group" ? "device dispatch events" : "host execution events";
    DispatchTime d;
    d.name = row.value("key", "");
    double count = row.contains("valid") && row["valid"].is_number() ? row["valid"].get<double>()
                   : row.contains("count") && row["count"].is_number() ? row["count"].get<double>() : 0.0;
    double total_ns = row.value("total_ns", 0.0);
    if (count <= 0) continue;
    d.avg_us = total_ns / count / 1e3;
    d.launches_per_call = count / std::max(1, calls);
    d.per_call_us = total_ns / std::max(1, calls) / 1e3;
    add(p, std::move(d));
  }
  return finish(std::move(p), "the runtime's profile holds no dispatch events");
}

Result<Profile> profile(const toolchain::Toolchain& tools, compile::Executor& executor, const RunSpec& spec, int calls) {
  if (tools.profile.empty() || tools.benchmark_module.empty()) {
    return fail(Code::kFailedPrecondition, "iree-profile or iree-benchmark-module is missing; install iree-base-runtime " +
                                               (tools.release.empty() ? std::string() : "==" + tools.release));
  }
  KILN_TRY_STATUS(check_inputs(spec.signature, spec.inputs));
  fs::path bundle = fs::absolute(spec.work_dir) / "profile.ireeprof";
  std::vector<std::string> argv = {tools.benchmark_module.string(), "--module=" + fs::absolute(spec.signature.path).string(),
                                   "--device=" + spec.device, "--function=" + spec.signature.function,
                                   fmt::format("--benchmark_min_time={}x", calls), "--benchmark_format=json",
                                   std::string("--device_profiling_mode=") + (on_host(spec.device) ? "host-execution" : "dispatch-events"),
                                   "--device_profiling_output=" + bundle.string()};
  argv.insert(argv.end(), spec.runtime_flags.begin(), spec.runtime_flags.end());
  auto inputs = KILN_TRY(input_flags(spec.inputs, spec.work_dir));
  argv.insert(argv.end(), inputs.begin(), inputs.end());
  auto r = KILN_TRY(executor.run({argv, spec.signature.path, spec.work_dir, spec.timeout, {}, wants_gpu(spec.device)}));
  if (!r.ok() && r.err.find("UNIMPLEMENTED") != std::string::npos && r.err.find("profiling") != std::string::npos) {
    return fail(Code::kFailedPrecondition,
                fmt::format("the '{}' driver of this IREE runtime ({}) does not implement per-dispatch profiling: {}; "
                            "kiln profile works on the local CPU devices and on drivers that implement it; "
                            "'kiln bench' still measures the whole call",
                            spec.device.substr(0, spec.device.find(':')), tools.runtime_release,
                            std::string(util::trim(r.err)).substr(0, 300)));
  }
  if (!r.ok()) {
    return fail(Code::kInvalidArgument, fmt::format("profiling on device '{}' failed ({}): {}", spec.device,
                                                    util::describe_outcome(r), std::string(util::trim(r.err)).substr(0, 1500)));
  }
  double call_ms = 0;
  auto report = nlohmann::json::parse(r.out, nullptr, false);
  if (!report.is_discarded() && report.contains("benchmarks") && report["benchmarks"].is_array()) {
    for (const auto& b : report["benchmarks"]) {
      if (!b.is_object() || !b.contains("real_time") || !b["real_time"].is_number()) continue;
      call_ms = benchmark_row_ms(b);
    }
  }
  auto read = KILN_TRY(executor.run({{tools.profile.string(), "dispatch", "--format=jsonl", bundle.string()}, bundle,
                                     spec.work_dir, spec.timeout, {}, false}));
  if (!read.ok()) {
    return fail(Code::kInternal, fmt::format("iree-profile could not read the profile ({}): {}", util::describe_outcome(read),
                                             std::string(util::trim(read.err)).substr(0, 1500)));
  }
  auto p = KILN_TRY(parse_dispatch_report(read.out, calls));
  p.call_ms = call_ms;
  return p;
}

std::string dispatch_of_benchmark(const std::string& function) {
  // The function is <executable>_<variant>_<export>, and the export's name
  // starts with the executable's ("main_dispatch_0").
  size_t at = function.find("dispatch_");
  if (at == std::string::npos) return function;
  size_t end = at + 9;
  while (end < function.size() && std::isdigit(static_cast<unsigned char>(function[end]))) ++end;
  std::string executable = function.substr(0, end);
  size_t again = function.find("_" + executable + "_", 1);
  return again == std::string::npos ? function : function.substr(again + 1);
}

Result<Profile> profile_dispatch_benchmarks(const toolchain::Toolchain& tools, compile::Executor& executor,
                                            const std::string& device, const std::vector<std::string>& runtime_flags,
                                            const std::vector<fs::path>& modules, int batch,
                                            std::chrono::milliseconds timeout, const fs::path& work_dir) {
  if (tools.benchmark_module.empty()) return fail(Code::kFailedPrecondition, "iree-benchmark-module is missing; install iree-base-runtime");
  Profile p;
  p.source = "compiler dispatch benchmarks (each dispatch alone, zero-filled buffers)";
  p.calls = 0;
  for (const auto& module : modules) {
    std::vector<std::string> argv = {tools.benchmark_module.string(), "--module=" + fs::absolute(module).string(),
                                     "--device=" + device, fmt::format("--batch_size={}", batch),
                                     "--benchmark_format=json", "--benchmark_min_time=0.1s"};
    argv.insert(argv.end(), runtime_flags.begin(), runtime_flags.end());
    auto r = KILN_TRY(executor.run({argv, module, work_dir, timeout, {}, wants_gpu(device)}));
    if (!r.ok()) {
      return fail(Code::kInvalidArgument, fmt::format("benchmarking {} on '{}' failed ({}): {}", module.filename().string(), device,
                                                      util::describe_outcome(r), std::string(util::trim(r.err)).substr(0, 1500)));
    }
    auto report = nlohmann::json::parse(r.out, nullptr, false);
    if (report.is_discarded() || !report.contains("benchmarks") || !report["benchmarks"].is_array()) {
      return fail(Code::kInternal, "cannot read iree-benchmark-module's JSON report for " + module.filename().string());
    }
    for (const auto& b : report["benchmarks"]) {
      if (!b.is_object() || b.value("run_type", "iteration") != "iteration" || !b.contains("real_time")) continue;
      std::string name = b.value("name", "");
      if (util::starts_with(name, "BM_")) name = name.substr(3);
      name = name.substr(0, name.find('/'));
      DispatchTime d;
      d.name = dispatch_of_benchmark(name);
      // iree-benchmark-module reports the time per invocation: it divides
      // each iteration's time by the batch size itself.
      d.avg_us = benchmark_row_ms(b) * 1e3;
      d.launches_per_call = 1;
      d.per_call_us = d.avg_us;
      add(p, std::move(d));
    }
  }
  return finish(std::move(p), "the dispatch benchmarks reported nothing");
}

Result<double> dispatch_report_ms(const nlohmann::json& report) {
  if (!report.is_object() || !report.contains("benchmarks") || !report["benchmarks"].is_array()) {
    return fail(Code::kInternal, "iree-benchmark-module's JSON report has no benchmarks");
  }
  std::map<std::string, std::vector<double>> per_function;
  for (const auto& b : report["benchmarks"]) {
    if (!b.is_object() || b.value("run_type", "iteration") != "iteration" || !b.contains("real_time") ||
        !b["real_time"].is_number()) {
      continue;
    }
    std::string name = b.value("run_name", b.value("name", ""));
    per_function[name].push_back(benchmark_row_ms(b));
  }
  if (per_function.empty()) return fail(Code::kInternal, "iree-benchmark-module reported no timed runs");
  double total = 0;
  for (auto& [name, times] : per_function) {
    std::sort(times.begin(), times.end());
    total += times[times.size() / 2];
  }
  return total;
}

Result<double> benchmark_dispatch(const toolchain::Toolchain& tools, compile::Executor& executor,
                                  const DispatchBenchSpec& spec) {
  if (tools.benchmark_module.empty()) return fail(Code::kFailedPrecondition, "iree-benchmark-module is missing; install iree-base-runtime");
  std::vector<std::string> argv = {tools.benchmark_module.string(), "--module=" + fs::absolute(spec.module).string(),
                                   "--device=" + spec.device, fmt::format("--batch_size={}", spec.batch),
                                   fmt::format("--benchmark_repetitions={}", spec.repetitions),
                                   fmt::format("--benchmark_min_time={}s", spec.min_seconds),
                                   "--benchmark_format=json"};
  argv.insert(argv.end(), spec.runtime_flags.begin(), spec.runtime_flags.end());
  auto r = KILN_TRY(executor.run({argv, spec.module, spec.work_dir, spec.timeout, {}, wants_gpu(spec.device)}));
  if (r.timed_out) return fail(Code::kDeadlineExceeded, "the dispatch benchmark ran past its time limit");
  if (!r.ok()) {
    return fail(Code::kInternal, fmt::format("benchmarking {} on '{}' failed ({}): {}", spec.module.filename().string(),
                                             spec.device, util::describe_outcome(r),
                                             std::string(util::trim(r.err)).substr(0, 1500)));
  }
  auto report = nlohmann::json::parse(r.out, nullptr, false);
  if (report.is_discarded()) return fail(Code::kInternal, "cannot read iree-benchmark-module's JSON report");
  return dispatch_report_ms(report);
}

nlohmann::json to_json(const Profile& p) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& d : p.dispatches) {
    nlohmann::json row = {{"name", d.name}, {"op", d.op}, {"bounds", d.bounds}, {"launches_per_call", d.launches_per_call},
                          {"avg_us", d.avg_us}, {"per_call_us", d.per_call_us}, {"share", d.share}};
    row["tflops"] = d.tflops > 0 ? nlohmann::json(d.tflops) : nlohmann::json(nullptr);
    rows.push_back(row);
  }
  return {{"source", p.source}, {"calls", p.calls}, {"call_ms", p.call_ms}, {"dispatch_ms", p.dispatch_ms}, {"dispatches", rows}};
}

}  // namespace kiln::runtime
