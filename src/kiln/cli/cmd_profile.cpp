#include <iostream>

#include <fmt/format.h>

#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/cli/run_common.h"
#include "kiln/cli/tuning_db.h"
#include "kiln/mlir/inspect.h"
#include "kiln/runtime/profile.h"
#include "kiln/tune/dispatch_bundle.h"
#include "kiln/util/file.h"

namespace kiln::cli {

namespace fs = std::filesystem;
mlir::BytecodePrinter lazy_printer(const config::Config& config);

namespace {

Result<int> prepare_dispatches(Context& context, const std::string& model, const std::string& target_spec,
                               const std::string& output, const std::string& precision, bool no_tuning) {
  auto target = KILN_TRY(target::resolve(target_spec));
  compile::Options options;
  options.precision = precision == "highest" ? "" : precision;
  options.use_tuning = !no_tuning;
  KILN_TRY_STATUS(compile::validate(options));
  std::error_code ec;
  KILN_TRY_STATUS(util::expect_regular_file(model));
  options.timeout = std::chrono::milliseconds(static_cast<int64_t>(context.settings.compile_timeout * 1000));
  auto selected = KILN_TRY(select_executor(context, "", Need::kCompiler));
  auto module = KILN_TRY(mlir::inspect_file(model, lazy_printer(context.config)));
  auto db = tuning_for_compiles(context.settings);
  auto b = KILN_TRY(tune::prepare_dispatch_bundle(model, module, target, options, output, selected.tools,
                                                   *selected.executor, db ? &*db : nullptr));
  std::cout << fmt::format("{}: {} dispatch benchmark modules of {} for {}{}; profile them with 'kiln profile {}'\n", output,
                           b.modules.size(), b.program_name, b.target_spec,
                           b.tuning_record.empty() ? "" : " (tuning record " + b.tuning_record.substr(0, 12) + " applied)",
                           output);
  return 0;
}

Result<runtime::Profile> profile_bundle(Context& context, const ModuleOptions& o, int batch, std::string& device) {
  auto b = KILN_TRY(tune::read_dispatch_bundle(o.module));
  auto selected = KILN_TRY(select_executor(context, o.executor, Need::kRuntime));
  const std::string& release = selected.tools.runtime_release;
  if (!release.empty() && release != b.iree_release) {
    return fail(Code::kFailedPrecondition, fmt::format("{} was compiled by IREE {} and this runtime is IREE {}; install "
                                                       "iree-base-runtime=={}", o.module, b.iree_release, release, b.iree_release));
  }
  device = o.device.empty() ? b.runtime_device : runtime::device_uri(o.device);
  std::vector<fs::path> modules;
  for (const auto& m : b.modules) modules.push_back(fs::path(o.module) / m);
  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-profile-"));
  return runtime::profile_dispatch_benchmarks(selected.tools, *selected.executor, device, o.runtime_flags, modules, batch,
                                              std::chrono::milliseconds(static_cast<int64_t>(o.timeout * 1000)),
                                              scratch.path());
}

}  // namespace

Result<int> run_profile(Context& context) {
  CLI::App app{"Where a module's time goes, per dispatch.\n"
               "  kiln profile MODULE.vmfb         the runtime's own profiling over many back-to-back calls (device\n"
               "                                   timestamps where the driver implements it; host events on CPUs)\n"
               "  kiln profile prepare MODEL --target T -o DIR   compiler host: one benchmark module per dispatch\n"
               "  kiln profile DIR                 time each dispatch alone (runtime only; any driver)",
               "profile"};
  app.require_subcommand(0, 1);
  ModuleOptions o;
  int calls = 50, batch = 16;
  bool json = false;
  add_module_options(app, o, false);
  app.add_option("--calls", calls, "calls profiled (default 50)")->check(CLI::Range(1, 100000));
  app.add_option("--batch", batch, "launches per timed call of a dispatch benchmark (default 16)")->check(CLI::Range(1, 4096));
  app.add_flag("--json", json, "print JSON");
  std::string model, target, output, precision;
  bool no_tuning = false;
  auto* prepare = app.add_subcommand("prepare", "compile one benchmark module per dispatch (compiler host)");
  prepare->add_option("model", model, "the StableHLO program")->required();
  prepare->add_option("-t,--target", target, "the target")->required();
  prepare->add_option("-o,--output", output, "the bundle folder (new)")->required();
  prepare->add_option("--precision", precision, "highest (default), f16-inputs or bf16-inputs");
  prepare->add_flag("--no-tuning", no_tuning, "profile the compiler's own choices, not the tuning record's");
  if (KILN_TRY(parse_args(app, context))) return 0;
  if (prepare->parsed()) return prepare_dispatches(context, model, target, output, precision, no_tuning);
  if (o.module.empty()) return fail(Code::kInvalidArgument, "give a module, a dispatch bundle, or 'prepare' (see 'kiln profile --help')");

  std::error_code ec;
  runtime::Profile p;
  std::string device;
  std::vector<std::string> runtime_flags;
  if (fs::is_directory(o.module, ec)) {
    p = KILN_TRY(profile_bundle(context, o, batch, device));
    runtime_flags = o.runtime_flags;
  } else {
    auto loaded = KILN_TRY(load_module(context, o));
    const auto& sig = loaded.signature;
    auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-profile-"));
    runtime::RunSpec spec{sig, choose_device(o.device, sig), loaded.inputs, scratch.path(), loaded.timeout,
                          runtime_flags_for(o, sig)};
    p = KILN_TRY(runtime::profile(loaded.selected.tools, *loaded.selected.executor, spec, calls));
    device = spec.device;
    runtime_flags = spec.runtime_flags;
  }
  if (json) {
    auto out = runtime::to_json(p);
    out["module"] = o.module;
    out["device"] = device;
    out["runtime_flags"] = runtime_flags;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (p.calls > 0) {
    std::cout << fmt::format("{} on {}: {} calls, {:.4f} ms per call, {:.4f} ms of it in dispatches ({})\n", o.module,
                             device, p.calls, p.call_ms, p.dispatch_ms, p.source);
  } else {
    std::cout << fmt::format("{} on {}: {:.4f} ms of dispatches if each runs once per call ({})\n", o.module, device,
                             p.dispatch_ms, p.source);
  }
  std::cout << fmt::format("  {:>6}  {:>10}  {:>10}  {:>8}  {:>9}  {}\n", "share", "us/call", "us/launch", "launches",
                           "TFLOP/s", "dispatch");
  for (const auto& d : p.dispatches) {
    std::cout << fmt::format("  {:>5.1f}%  {:>10.2f}  {:>10.2f}  {:>8.1f}  {:>9}  {}\n", 100 * d.share, d.per_call_us,
                             d.avg_us, d.launches_per_call, d.tflops > 0 ? fmt::format("{:.2f}", d.tflops) : "-", d.name);
  }
  if (p.call_ms > 0 && p.dispatch_ms < 0.5 * p.call_ms) {
    std::cout << fmt::format("  note: dispatches are {:.0f}% of the call; the rest is launch, allocation and "
                             "synchronisation (try 'kiln tune' for runtime options)\n",
                             100 * p.dispatch_ms / p.call_ms);
  }
  return 0;
}

}  // namespace kiln::cli
