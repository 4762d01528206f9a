#include <algorithm>
#include <iostream>

#include <fmt/format.h>

#include "kiln/bench/report.h"
#include "kiln/bench/stats.h"
#include "kiln/cli/module_binding.h"
#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/cli/run_common.h"
#include "kiln/runtime/runner.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/file.h"

namespace kiln::cli {

namespace fs = std::filesystem;

namespace {

Result<nlohmann::json> read_report(const std::string& path) {
  auto text = KILN_TRY(util::read_file(path));
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return fail(Code::kInvalidArgument, path + ": not valid JSON: " + e.what());
  }
}

// --amortized: the mean time per call of back-to-back calls on
// device-resident inputs (the figure deployments see, and what `kiln tune
// measure` reports), once per repetition, and their median.
Result<int> run_amortized(const runtime::RunSpec& run, const LoadedModule& loaded, double min_time, int repetitions,
                          bool json) {
  auto means = KILN_TRY(runtime::benchmark_amortized(loaded.selected.tools, *loaded.selected.executor,
                                                     {run, min_time, repetitions}));
  double median = bench::percentile(means, 50);
  nlohmann::json out = {{"module", fs::path(run.signature.path).filename().string()},
                        {"function", run.signature.function},
                        {"device", run.device},
                        {"invocation", run.signature.invocation},
                        {"min_time_s", min_time},
                        {"means_ms", means},
                        {"amortized_ms", median}};
  if (json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::cout << fmt::format("{}: {:.4f} ms per call, amortized (median of {} repetitions of at least {} s of "
                             "back-to-back calls on {})\n",
                             out["module"].get<std::string>(), median, means.size(), min_time, run.device);
  }
  return 0;
}

}  // namespace

Result<int> run_bench(Context& context) {
  CLI::App app{"Measure a module's latency with warm-up and repetitions, one call per sample; write JSON, Markdown and\n"
               "an SVG chart. With --compare, check NEW against BASE and exit 1 on a regression.",
               "bench"};
  ModuleOptions o;
  std::string out_dir;
  std::vector<std::string> compare;
  int warmup = 5, repetitions = 100, batch = 1, concurrency = 1;
  double threshold = 5, min_time = 0.2;
  bool json = false, amortized = false;
  add_module_options(app, o, false);
  app.add_option("--warmup", warmup, "runs discarded before measuring (default 5)")->check(CLI::Range(0, 100000));
  auto* reps = app.add_option("--repetitions", repetitions, "runs measured (default 100)")->check(CLI::Range(1, 1000000));
  app.add_option("--batch", batch, "items per run, for items/s (default 1)")->check(CLI::Range(1, 1 << 30));
  app.add_option("--concurrency", concurrency, "benchmark processes at once (default 1)")->check(CLI::Range(1, 256));
  app.add_option("-o,--output-dir", out_dir, "where the reports go (default: MODULE.bench/)");
  app.add_option("--compare", compare, "BASE.json NEW.json: compare two reports")->expected(2);
  app.add_option("--threshold", threshold, "allowed p50 slowdown in percent for --compare (default 5)");
  app.add_flag("--json", json, "print the JSON report");
  app.add_flag("--amortized", amortized,
               "time back-to-back calls instead: the mean per call, once per repetition (--repetitions, default 3 "
               "here), each at least --min-time seconds; writes no report");
  app.add_option("--min-time", min_time, "seconds of back-to-back calls per repetition with --amortized (default 0.2)")
      ->check(CLI::Range(0.001, 60.0));
  if (KILN_TRY(parse_args(app, context))) return 0;

  if (!compare.empty()) {
    auto base = KILN_TRY(read_report(compare[0]));
    auto current = KILN_TRY(read_report(compare[1]));
    auto r = KILN_TRY(bench::compare_reports(base, current, threshold));
    std::cout << r.summary << "\n"
              << (r.regressed ? fmt::format("REGRESSION: p50 is more than {:.1f}% slower than the base\n", threshold)
                              : "no regression\n");
    return r.regressed ? 1 : 0;
  }
  if (o.module.empty()) return fail(Code::kInvalidArgument, "give a module to benchmark, or --compare BASE.json NEW.json");

  auto loaded = KILN_TRY(load_module(context, o));
  const auto& sig = loaded.signature;
  const std::string& module = o.module;
  fs::path dir = KILN_TRY(output_folder(o.module, out_dir, ".bench"));
  auto scratch = KILN_TRY(util::TempDir::create(dir, ".kiln-bench-"));
  runtime::BenchSpec spec{{sig, choose_device(o.device, sig), loaded.inputs, scratch.path(), loaded.timeout,
                           runtime_flags_for(o, sig)},
                          warmup, repetitions, concurrency};
  if (amortized) return run_amortized(spec.run, loaded, min_time, reps->count() > 0 ? repetitions : 3, json);
  auto samples = KILN_TRY(runtime::benchmark(loaded.selected.tools, *loaded.selected.executor, spec));

  bench::Report report{fs::path(module).filename().string(), sig.function, spec.run.device, warmup, batch, concurrency,
                       samples, bench::compute(samples, batch, concurrency)};
  std::string stem = fs::path(module).stem().string();
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.json"), bench::to_json(report).dump(2) + "\n"));
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.md"), bench::to_markdown(report)));
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.svg"), bench::to_svg(report)));
  if (json) {
    auto out = bench::to_json(report);
    if (auto binding = module_binding(module); !binding.is_null()) out["binding"] = binding;
    std::cout << out.dump(2) << "\n";
  } else {
    if (auto line = binding_line(module_binding(module)); !line.empty()) std::cout << line << "\n";
    std::cout << bench::to_markdown(report) << "\nwrote " << (dir / (stem + ".bench.{json,md,svg}")).string() << "\n";
  }
  if (!report.stats.spread_warning.empty()) std::cerr << "kiln: warning: " << report.stats.spread_warning << "\n";
  return 0;
}

}  // namespace kiln::cli
