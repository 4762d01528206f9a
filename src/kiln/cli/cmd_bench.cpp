#include <iostream>

#include <fmt/format.h>

#include "kiln/bench/report.h"
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

}  // namespace

Result<int> run_bench(Context& context) {
  CLI::App app{"Measure a module's latency with warm-up and repetitions, one call per sample; write JSON, Markdown and\n"
               "an SVG chart. With --compare, check NEW against BASE and exit 1 on a regression.",
               "bench"};
  std::string module, function, device, out_dir;
  std::vector<std::string> compare;
  int warmup = 5, repetitions = 100, batch = 1, concurrency = 1;
  double threshold = 5, timeout = 600;
  bool json = false;
  InputOptions inputs;
  app.add_option("module", module, "compiled module (.vmfb)");
  app.add_option("--function", function, "function (default: the one public function)");
  app.add_option("--device", device, "device (default: the module's target's)");
  add_input_options(app, inputs);
  std::string executor_name;
  app.add_option("--executor", executor_name, "where the runtime tools run: local, or docker (kiln's image)")
      ->check(CLI::IsMember({"local", "docker"}));
  app.add_option("--warmup", warmup, "runs discarded before measuring (default 5)")->check(CLI::Range(0, 100000));
  app.add_option("--repetitions", repetitions, "runs measured (default 100)")->check(CLI::Range(1, 1000000));
  app.add_option("--batch", batch, "items per run, for items/s (default 1)")->check(CLI::Range(1, 1 << 30));
  app.add_option("--concurrency", concurrency, "benchmark processes at once (default 1)")->check(CLI::Range(1, 256));
  app.add_option("-o,--output-dir", out_dir, "where the reports go (default: MODULE.bench/)");
  app.add_option("--compare", compare, "BASE.json NEW.json: compare two reports")->expected(2);
  app.add_option("--threshold", threshold, "allowed p50 slowdown in percent for --compare (default 5)");
  app.add_option("--timeout", timeout, "time limit in seconds (default 600)");
  app.add_flag("--json", json, "print the JSON report");
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
  if (module.empty()) return fail(Code::kInvalidArgument, "give a module to benchmark, or --compare BASE.json NEW.json");

  auto selected = KILN_TRY(select_executor(context.config, executor_name, Need::kRuntime));
  const auto& tools = selected.tools;
  auto& executor = *selected.executor;
  auto sig = KILN_TRY(runtime::load(module, function, tools, executor));
  auto values = KILN_TRY(gather_inputs(sig, inputs));
  fs::path dir = out_dir.empty() ? fs::path(module).replace_extension(".bench") : fs::path(out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + dir.string() + ": " + ec.message());
  auto scratch = KILN_TRY(util::TempDir::create(dir, ".kiln-bench-"));
  runtime::BenchSpec spec{{sig, choose_device(device, sig), values, scratch.path(),
                           std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000))},
                          warmup, repetitions, concurrency};
  auto samples = KILN_TRY(runtime::benchmark(tools, executor, spec));

  bench::Report report{fs::path(module).filename().string(), sig.function, spec.run.device, warmup, batch, concurrency,
                       samples, bench::compute(samples, batch, concurrency)};
  std::string stem = fs::path(module).stem().string();
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.json"), bench::to_json(report).dump(2) + "\n"));
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.md"), bench::to_markdown(report)));
  KILN_TRY_STATUS(util::write_file_atomic(dir / (stem + ".bench.svg"), bench::to_svg(report)));
  if (json) {
    std::cout << bench::to_json(report).dump(2) << "\n";
  } else {
    std::cout << bench::to_markdown(report) << "\nwrote " << (dir / (stem + ".bench.{json,md,svg}")).string() << "\n";
  }
  if (!report.stats.spread_warning.empty()) std::cerr << "kiln: warning: " << report.stats.spread_warning << "\n";
  return 0;
}

}  // namespace kiln::cli
