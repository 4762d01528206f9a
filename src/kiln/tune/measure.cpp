// `kiln tune measure`: every candidate of a bundle, on the device, with the
// runtime alone.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>


#include <fmt/format.h>

#include "kiln/array/compare.h"
#include "kiln/array/random.h"
#include "kiln/runtime/module.h"
#include "kiln/runtime/runner.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"
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

}  // namespace

Result<Results> measure(const MeasureOptions& o, const toolchain::Toolchain& tools, compile::Executor& executor,
                        const Log& log) {
  Bundle bundle = KILN_TRY(read_bundle(o.bundle));
  std::string digest = KILN_TRY(bundle_digest(o.bundle));
  KILN_TRY_STATUS(check_runtime(bundle, tools));
  std::string name;
  std::string device = KILN_TRY(measuring_device(o, bundle, name));
  fs::path results_file = o.results.empty() ? o.bundle / "results.json" : o.results;
  Results results = KILN_TRY(earlier_results(o, bundle, results_file, digest, device, name, log));

  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-measure-"));
  const Candidate& reference = bundle.candidates.front();
  auto ref_sig = KILN_TRY(runtime::load(o.bundle / reference.module, bundle.function, tools, executor));
  auto inputs = KILN_TRY(seeded_inputs(ref_sig, bundle.seed));
  runtime::RunSpec ref_spec{ref_sig, device, inputs, scratch.path(), o.candidate_timeout};
  auto want = runtime::run(tools, executor, ref_spec);
  if (!want) return tl::unexpected(want.error().context("running the reference module (nothing can be measured without it)"));

  bool p50 = o.p50 || bundle.round == 2;
  auto started = std::chrono::steady_clock::now();
  double earlier = results.seconds;
  size_t index = 0;
  for (const auto& c : bundle.candidates) {
    ++index;
    if (results.find(c.id)) continue;
    if (util::interrupted()) return fail(Code::kCancelled, "interrupted; the measurements so far are saved, run again to resume");
    Measurement m = measure_one(o, bundle, c, ref_spec, *want, p50, tools, executor);
    // A candidate cut short by an interrupt is measured again on resumption.
    if (util::interrupted()) return fail(Code::kCancelled, "interrupted; the measurements so far are saved, run again to resume");
    m.id = c.id;
    log(m.status == "ok" ? fmt::format("[{}/{}] {}  {:.4f} ms{}", index, bundle.candidates.size(), c.id, m.latency_ms,
                                       m.p50_ms > 0 ? fmt::format("  (p50 {:.4f} ms)", m.p50_ms) : "")
                         : fmt::format("[{}/{}] {}  {}: {}", index, bundle.candidates.size(), c.id, m.status,
                                       first_words(m.message)));
    results.measurements.push_back(std::move(m));
    results.seconds = earlier + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    KILN_TRY_STATUS(util::write_file_atomic(results_file, to_json(results).dump(2) + "\n"));
  }
  results.seconds = earlier + std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  KILN_TRY_STATUS(util::write_file_atomic(results_file, to_json(results).dump(2) + "\n"));
  return results;
}

}  // namespace kiln::tune
