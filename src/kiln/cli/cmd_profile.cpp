#include <iostream>

#include <fmt/format.h>

#include "kiln/cli/parse.h"
#include "kiln/cli/run_common.h"
#include "kiln/runtime/profile.h"
#include "kiln/util/file.h"

namespace kiln::cli {

namespace fs = std::filesystem;

Result<int> run_profile(Context& context) {
  CLI::App app{"Where a module's time goes, per dispatch, from the runtime's own profiling (device timestamps on GPUs,\n"
               "host execution events on CPUs) over many back-to-back calls. Uses the module's deployment recipe.",
               "profile"};
  ModuleOptions o;
  int calls = 50;
  bool json = false;
  add_module_options(app, o);
  app.add_option("--calls", calls, "calls profiled (default 50)")->check(CLI::Range(1, 100000));
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto loaded = KILN_TRY(load_module(context.config, o));
  const auto& sig = loaded.signature;
  auto scratch = KILN_TRY(util::TempDir::create(util::temp_root(), "kiln-profile-"));
  runtime::RunSpec spec{sig, choose_device(o.device, sig), loaded.inputs, scratch.path(), loaded.timeout,
                        runtime_flags_for(o, sig)};
  auto p = KILN_TRY(runtime::profile(loaded.selected.tools, *loaded.selected.executor, spec, calls));
  if (json) {
    auto out = runtime::to_json(p);
    out["module"] = o.module;
    out["device"] = spec.device;
    out["runtime_flags"] = spec.runtime_flags;
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("{} on {}: {} calls, {:.4f} ms per call, {:.4f} ms of it in dispatches ({})\n", o.module,
                           spec.device, p.calls, p.call_ms, p.dispatch_ms, p.source);
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
