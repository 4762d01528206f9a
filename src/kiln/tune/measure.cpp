// `kiln tune measure`: every candidate of a bundle, on the device, with the
// runtime alone.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>


#include <fmt/format.h>

#include "kiln/array/compare.h"
#include "kiln/array/random.h"
#include "kiln/runtime/module.h"
#include "kiln/runtime/profile.h"
#include "kiln/runtime/runner.h"
#include "kiln/tune/dispatches.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"
#include "kiln/util/progress.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"
#include "kiln/util/time.h"

namespace kiln::tune {
namespace {

std::string driver_of(const std::string& uri) {
  std::string d = uri.substr(0, uri.find(':'));
  return util::starts_with(d, "local-") ? "local" : d;
}

// What the device is, in the vendor's words: the GPU's name from
// nvidia-smi, or the CPU's model from /proc/cpuinfo.
std::string device_name(const std::string& uri) {
  std::string driver = driver_of(uri);
  if (driver == "cuda") {
    fs::path smi = util::find_program("nvidia-smi");
    if (smi.empty()) return "";
    std::string index = uri.find("://") != std::string::npos ? uri.substr(uri.find("://") + 3) : "0";
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos) index = "0";
    auto r = util::run_process({{smi.string(), "--query-gpu=name", "--format=csv,noheader", "-i", index}, {}, {},
                                std::chrono::milliseconds(20000)});
    if (!r || !r->ok()) return "";
    return std::string(util::trim(r->out.substr(0, r->out.find('\n'))));
  }
  if (driver == "local") {
    std::ifstream cpuinfo("/proc/cpuinfo");
    std::string line;
    while (std::getline(cpuinfo, line)) {
      if (util::starts_with(line, "model name")) return std::string(util::trim(line.substr(line.find(':') + 1)));
    }
  }
  return "";
}

std::string first_words(const std::string& message) {
  std::string line = message.substr(0, message.find('\n'));
  return line.size() > 160 ? line.substr(0, 160) + "..." : line;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

Result<std::vector<array::Array>> seeded_inputs(const runtime::ModuleSignature& sig, uint64_t seed) {
  std::vector<array::Array> out;
  for (size_t i = 0; i < sig.inputs.size(); ++i) {
    const auto& type = sig.inputs[i].type;
    if (!type.is_tensor || !type.ranked || type.has_dynamic_dims() || array::element_size(type.element) == 0) {
      return fail(Code::kInvalidArgument, fmt::format("input {} has type {}, for which kiln cannot make values", i, type.text()));
    }
    // The same recipe as `kiln run --seed`, so a user can reproduce the inputs.
    out.push_back(array::random_array(type.element, type.dims, array::input_seed(seed, i)));
  }
  return out;
}

// Runs a candidate once and compares its outputs with the reference's.
Measurement check(const runtime::RunSpec& spec, const std::vector<array::Array>& want, const toolchain::Toolchain& tools,
                  compile::Executor& executor) {
  Measurement m;
  auto got = runtime::run(tools, executor, spec);
  if (!got) {
    m.status = got.error().code == Code::kDeadlineExceeded ? "timeout" : "failed";
    m.message = got.error().message.substr(0, 600);
    return m;
  }
  m.status = "ok";
  if (got->size() != want.size()) {
    m.status = "mismatch";
    m.message = fmt::format("{} outputs, the reference has {}", got->size(), want.size());
    return m;
  }
  for (size_t i = 0; i < want.size(); ++i) {
    auto c = array::compare((*got)[i], want[i], array::default_tolerance(want[i].element), array::NanPolicy::kEqual);
    m.max_abs_error = std::max(m.max_abs_error, c.max_abs_error);
    if (!c.passed) {
      m.status = "mismatch";
      m.message = fmt::format("output {}: {}", i,
                              c.problem.empty() ? fmt::format("{} of {} elements differ, max abs error {:.4g}",
                                                              c.mismatches, c.count, c.max_abs_error)
                                                : c.problem);
    }
  }
  return m;
}

// The runtime's own release must be the bundle's: a runtime-only host has
// no compiler release.
Status check_runtime(const Bundle& bundle, const toolchain::Toolchain& tools) {
  const std::string& runtime = tools.runtime_release.empty() ? tools.release : tools.runtime_release;
  if (runtime.empty()) {
    return fail(Code::kFailedPrecondition, "no IREE runtime found: install iree-base-runtime==" + bundle.iree_release);
  }
  if (bundle.iree_release != runtime) {
    return fail(Code::kFailedPrecondition,
                fmt::format("the bundle was compiled by IREE {} and this runtime is IREE {}; a module loads only in its "
                            "own release: install iree-base-runtime=={} here, or prepare the bundle with IREE {}",
                            bundle.iree_release, runtime, bundle.iree_release, runtime));
  }
  return {};
}

// The device to measure on, which must be of the bundle's driver (and GPU,
// unless --any-device); `name` is the device's own name, if it has one.
Result<std::string> measuring_device(const MeasureOptions& o, const Bundle& bundle, std::string& name) {
  std::string device = o.device.empty() ? bundle.runtime_device : runtime::device_uri(o.device);
  if (driver_of(device) != driver_of(bundle.runtime_device)) {
    return fail(Code::kInvalidArgument, fmt::format("the bundle's modules are for {} ({}), not device '{}'",
                                                    bundle.target_spec, bundle.runtime_device, device));
  }
  name = device_name(device);
  if (!bundle.gpu.empty() && !name.empty() && !o.any_device &&
      util::to_lower(name).find(util::to_lower(bundle.gpu)) == std::string::npos) {
    return fail(Code::kFailedPrecondition,
                fmt::format("the bundle was prepared for {} ({}) but this host's GPU is '{}': timings from another GPU "
                            "would tune for the wrong chip; prepare a bundle for this GPU, or pass --any-device",
                            bundle.gpu, bundle.target_spec, name));
  }
  return device;
}

// The results measured so far (resumed from the file), which must be of
// this bundle and this device.
Result<Results> earlier_results(const MeasureOptions& o, const Bundle& bundle, const fs::path& results_file,
                                const std::string& digest, const std::string& device, const std::string& name,
                                const Log& log) {
  Results results;
  std::error_code ec;
  if (fs::exists(results_file, ec)) {
    results = KILN_TRY(read_results(results_file));
    if (results.bundle_digest != digest) {
      return fail(Code::kInvalidArgument, fmt::format("{} holds results of another bundle; remove it or give --results",
                                                      results_file.string()));
    }
    std::string here = name.empty() ? "unknown" : name;
    if (!results.measurements.empty() && (results.device_uri != device || results.device_name != here) && !o.any_device) {
      return fail(Code::kFailedPrecondition,
                  fmt::format("{} holds timings from {} ({}); timings from this device ({}, {}) cannot be mixed with "
                              "them: measure into another --results file",
                              results_file.string(), results.device_name, results.device_uri, here, device));
    }
    log(fmt::format("resuming: {} of {} candidates measured already", results.measurements.size(), bundle.candidates.size()));
  }
  results.bundle_digest = digest;
  results.device_uri = device;
  results.device_name = name.empty() ? "unknown" : name;
  if (results.measured_at.empty()) results.measured_at = util::utc_timestamp();
  return results;
}

// One candidate: its outputs checked against the reference's, then timed.
Measurement measure_one(const MeasureOptions& o, const Bundle& bundle, const Candidate& c, const runtime::RunSpec& ref,
                        const std::vector<array::Array>& want, bool p50, const toolchain::Toolchain& tools,
                        compile::Executor& executor) {
  Measurement m;
  auto sig = runtime::load(o.bundle / c.module, bundle.function, tools, executor);
  if (!sig) {
    m.status = "failed";
    m.message = sig.error().message;
    return m;
  }
  runtime::RunSpec spec{*sig, ref.device, ref.inputs, ref.work_dir, o.candidate_timeout, c.runtime_flags};
  m = check(spec, want, tools, executor);
  if (m.status == "ok") {
    auto means = runtime::benchmark_amortized(tools, executor, {spec, o.min_seconds, o.repetitions});
    if (means) {
      m.latency_ms = median(*means);
    } else {
      m.status = means.error().code == Code::kDeadlineExceeded ? "timeout" : "failed";
      m.message = means.error().message.substr(0, 600);
    }
  }
  if (m.status == "ok" && p50) {
    auto samples = runtime::benchmark(tools, executor, {spec, 10, 100, 1});
    if (samples) m.p50_ms = median(*samples);
  }
  return m;
}

// A dispatch candidate: its executable's benchmark program, timed alone.
// Its outputs cannot be checked (the program launches the dispatch on
// zero-filled buffers); round 2 checks the whole program it ends up in.
Measurement measure_dispatch(const MeasureOptions& o, const Candidate& c, const std::string& device, const fs::path& work,
                             const toolchain::Toolchain& tools, compile::Executor& executor) {
  Measurement m;
  runtime::DispatchBenchSpec spec;
  spec.module = o.bundle / c.module;
  spec.device = device;
  spec.batch = o.dispatch_batch;
  spec.repetitions = o.dispatch_repetitions;
  spec.min_seconds = o.dispatch_min_seconds;
  spec.timeout = o.candidate_timeout;
  spec.work_dir = work;
  auto ms = runtime::benchmark_dispatch(tools, executor, spec);
  if (ms) {
    m.status = "ok";
    m.latency_ms = *ms;
  } else {
    m.status = ms.error().code == Code::kDeadlineExceeded ? "timeout" : "failed";
    m.message = ms.error().message.substr(0, 600);
  }
  return m;
}

std::string result_line(const Measurement& m) {
  if (m.status != "ok") return fmt::format("{}  {}: {}", m.id, m.status, first_words(m.message));
  return fmt::format("{}  {:.4f} ms{}", m.id, m.latency_ms, m.p50_ms > 0 ? fmt::format("  (p50 {:.4f} ms)", m.p50_ms) : "");
}

// What is to be measured; run the reference first, whose outputs every
// whole-program candidate is checked against.
struct Session {
  Bundle bundle;
  std::string digest, device;
  fs::path results_file;
  Results results;
  runtime::RunSpec ref_spec;
  std::vector<array::Array> want;
};

Status start_session(const MeasureOptions& o, const toolchain::Toolchain& tools, compile::Executor& executor,
                     const fs::path& scratch, Session& s, const Log& log) {
  s.bundle = KILN_TRY(read_bundle(o.bundle));
  s.digest = KILN_TRY(bundle_digest(o.bundle));
  KILN_TRY_STATUS(check_runtime(s.bundle, tools));
  std::string name;
  s.device = KILN_TRY(measuring_device(o, s.bundle, name));
  s.results_file = o.results.empty() ? o.bundle / "results.json" : o.results;
  s.results = KILN_TRY(earlier_results(o, s.bundle, s.results_file, s.digest, s.device, name, log));
  const Candidate& reference = s.bundle.candidates.front();
  auto ref_sig = KILN_TRY(runtime::load(o.bundle / reference.module, s.bundle.function, tools, executor));
  auto inputs = KILN_TRY(seeded_inputs(ref_sig, s.bundle.seed));
  s.ref_spec = runtime::RunSpec{ref_sig, s.device, inputs, scratch, o.candidate_timeout};
  auto want = runtime::run(tools, executor, s.ref_spec);
  if (!want) return tl::unexpected(want.error().context("running the reference module (nothing can be measured without it)"));
  s.want = std::move(*want);
  auto plan = measure_plan(s.bundle, o.repetitions, o.min_seconds, o.dispatch_repetitions, o.dispatch_min_seconds);
  log("plan: " + plan.describe());
  return {};
}

}  // namespace

Result<Results> measure(const MeasureOptions& o, const toolchain::Toolchain& tools, compile::Executor& executor,
                        const Log& log) {
  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-measure-"));
  Session s;
  KILN_TRY_STATUS(start_session(o, tools, executor, scratch.path(), s, log));
  const auto& candidates = s.bundle.candidates;
  size_t todo = std::count_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return !s.results.find(c.id); });
  std::optional<util::Progress> bar;
  if (o.progress && todo > 0) bar.emplace(*o.progress, "[tune] ", todo, o.terminal);
  bool p50 = o.p50 || s.bundle.round == 2;
  auto started = std::chrono::steady_clock::now();
  double earlier = s.results.seconds;
  auto save = [&]() {
    s.results.seconds = earlier + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return util::write_file_atomic(s.results_file, to_json(s.results).dump(2) + "\n");
  };
  const char* stopped = "interrupted; the measurements so far are saved, run again to resume";
  for (const auto& c : candidates) {
    if (s.results.find(c.id)) continue;
    if (util::interrupted()) return fail(Code::kCancelled, stopped);
    Measurement m = c.executable.empty()
                        ? measure_one(o, s.bundle, c, s.ref_spec, s.want, p50, tools, executor)
                        : measure_dispatch(o, c, s.device, scratch.path(), tools, executor);
    // A candidate cut short by an interrupt is measured again on resumption.
    if (util::interrupted()) return fail(Code::kCancelled, stopped);
    m.id = c.id;
    if (bar) bar->advance(result_line(m), true);
    else log(result_line(m));
    s.results.measurements.push_back(std::move(m));
    KILN_TRY_STATUS(save());
  }
  if (bar) bar->finish();
  KILN_TRY_STATUS(save());
  return s.results;
}

}  // namespace kiln::tune
