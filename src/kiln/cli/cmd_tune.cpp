#include <iostream>

#include <fmt/format.h>

#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/cli/tuning_db.h"
#include "kiln/compile/compile.h"
#include "kiln/mlir/inspect.h"
#include "kiln/tune/dispatches.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/progress.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

namespace fs = std::filesystem;
mlir::BytecodePrinter lazy_printer(const config::Config& config);

namespace {

void log_line(const std::string& line) { std::cerr << "[tune] " << line << "\n"; }

struct PrepareArgs {
  std::string model, target, output, precision, invocation, from, opt_level;
  std::vector<std::string> flags;  // --flag and what follows "--"
  bool tiling = false, no_tiling = false, keep_f64 = false;
  double timeout = 0;
  size_t per_dispatch = 0, max_dispatch = 0;
  int jobs = 0;
  uint64_t seed = 0;
};

void add_prepare_args(CLI::App& app, PrepareArgs& a, bool needs_output) {
  app.add_option("model", a.model, "the StableHLO program")->required();
  app.add_option("-t,--target", a.target, "the target to tune for, e.g. cuda:h100 or cpu")->required();
  auto* out = app.add_option("-o,--output", a.output, "the bundle folder (new)");
  if (needs_output) out->required();
  app.add_option("--precision", a.precision, "highest (default), f16-inputs or bf16-inputs");
  app.add_option("--invocation", a.invocation, "sync (default) or async: tune the module for calls queued back to back");
  app.add_option("--per-dispatch", a.per_dispatch, "configurations tried per dispatch (default 24 on GPUs, 6 on CPUs)")
      ->check(CLI::Range(0, 500));
  app.add_option("--max-dispatch-candidates", a.max_dispatch,
                 "dispatch candidates in round 1, shared among the executables (default 240 on GPUs, 60 on CPUs)")
      ->check(CLI::Range(1, 100000));
  app.add_option("-j,--jobs", a.jobs, "compiles at once (default: one per CPU)")->check(CLI::Range(1, 1024));
  app.add_option("--seed", a.seed, "seed of the generated inputs (default 0)");
  // The compiler options of `kiln compile`: every candidate is built with
  // them, and the record applies only to compiles with the same.
  add_opt_level(app, a.opt_level);
  app.add_flag("--data-tiling", a.tiling, "enable data tiling");
  app.add_flag("--no-data-tiling", a.no_tiling, "disable data tiling");
  app.add_flag("--keep-f64", a.keep_f64, "compute f64 as f64");
  app.add_option("--flag", a.flags, "extra iree-compile flag, e.g. --flag=--iree-opt-const-eval=false (also after '--')");
  app.add_option("--timeout", a.timeout, "time limit per compile, seconds (default: the compile_timeout setting)")
      ->check(CLI::Range(0.001, 86400.0));
}

// The compiler options of a tune command, checked as `kiln compile` checks them.
Result<compile::Options> compile_options(const PrepareArgs& a, const config::Settings& settings) {
  compile::Options o;
  o.opt_level = a.opt_level.empty() ? settings.opt_level : a.opt_level;
  if (a.tiling && a.no_tiling) return fail(Code::kInvalidArgument, "--data-tiling and --no-data-tiling contradict each other");
  if (a.tiling || a.no_tiling) o.data_tiling = a.tiling;
  o.keep_f64 = a.keep_f64;
  o.extra_flags = a.flags;
  o.precision = a.precision == "highest" ? "" : a.precision;
  o.invocation = a.invocation == "sync" ? "" : a.invocation;
  KILN_TRY_STATUS(compile::validate(o));
  return o;
}

Result<tune::Bundle> do_prepare(const PrepareArgs& a, const fs::path& output, const fs::path& from, Context& context) {
  auto target = KILN_TRY(target::resolve(a.target));
  compile::Options options = KILN_TRY(compile_options(a, context.settings));
  KILN_TRY_STATUS(util::expect_regular_file(a.model));
  auto selected = KILN_TRY(select_executor(context, "", Need::kCompiler));
  auto module = KILN_TRY(mlir::inspect_file(a.model, lazy_printer(context.config)));
  tune::PrepareOptions o;
  o.model = a.model;
  o.module = &module;
  o.target = target;
  o.output = output;
  o.precision = options.precision;
  o.invocation = options.invocation;
  options.precision.clear();
  options.invocation.clear();
  o.compile = options;
  bool cpu = target.backend == target::Backend::kCpu;
  o.per_dispatch = a.per_dispatch ? a.per_dispatch : cpu ? 6 : 24;
  o.max_dispatch_candidates = a.max_dispatch ? a.max_dispatch : cpu ? 60 : 240;
  o.pool.jobs = a.jobs ? a.jobs : compile::available_cpus();
  o.from = from;
  o.seed = a.seed;
  double timeout = a.timeout > 0 ? a.timeout : context.settings.compile_timeout;
  o.compile_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  o.progress = &std::cerr;
  o.terminal = util::stderr_is_terminal();
  return tune::prepare(o, selected.tools, *selected.executor, log_line);
}

struct MeasureArgs {
  std::string bundle, device, results;
  double min_time = 0.2, timeout = 120, dispatch_min_time = 0.02;
  int repetitions = 3, dispatch_repetitions = 5, dispatch_batch = 16;
  bool p50 = false, any_device = false;
};

void add_measure_options(CLI::App& app, MeasureArgs& a) {
  app.add_option("--device", a.device, "the device to measure on (default: the bundle's target's)");
  app.add_option("--min-time", a.min_time, "seconds of back-to-back calls per repetition (default 0.2)")->check(CLI::Range(0.001, 60.0));
  app.add_option("--repetitions", a.repetitions, "repetitions per candidate; the median counts (default 3)")->check(CLI::Range(1, 100));
  app.add_option("--candidate-timeout", a.timeout, "seconds one run of a candidate may take (default 120)")->check(CLI::Range(1.0, 86400.0));
  app.add_option("--dispatch-repetitions", a.dispatch_repetitions,
                 "timed runs per dispatch candidate; the median counts (default 5)")->check(CLI::Range(1, 100));
  app.add_option("--dispatch-min-time", a.dispatch_min_time, "seconds per timed run of a dispatch candidate (default 0.02)")
      ->check(CLI::Range(0.001, 60.0));
  app.add_option("--dispatch-batch", a.dispatch_batch, "launches per timed call of a dispatch candidate (default 16)")
      ->check(CLI::Range(1, 4096));
  app.add_flag("--p50", a.p50, "also measure per-call p50 (always in round 2)");
  app.add_flag("--any-device", a.any_device, "measure even on a GPU other than the one the bundle was prepared for");
}

Result<tune::Results> do_measure(const MeasureArgs& a, const fs::path& bundle, Context& context) {
  auto selected = KILN_TRY(select_executor(context, "", Need::kRuntime));
  tune::MeasureOptions o;
  o.bundle = bundle;
  o.device = a.device;
  o.results = a.results;
  o.min_seconds = a.min_time;
  o.repetitions = a.repetitions;
  o.p50 = a.p50;
  o.any_device = a.any_device;
  o.candidate_timeout = std::chrono::milliseconds(static_cast<int64_t>(a.timeout * 1000));
  o.dispatch_repetitions = a.dispatch_repetitions;
  o.dispatch_min_seconds = a.dispatch_min_time;
  o.dispatch_batch = a.dispatch_batch;
  o.progress = &std::cerr;
  o.terminal = util::stderr_is_terminal();
  return tune::measure(o, selected.tools, *selected.executor, log_line);
}

// Whole-program candidates against the reference, then each executable's
// best dispatch candidate against its baseline (timed alone).
void print_measurements(const tune::Bundle& bundle, const tune::Results& r) {
  const auto* ref = r.find("reference");
  std::vector<std::pair<const tune::Measurement*, const tune::Candidate*>> ok;
  size_t bad = 0;
  for (const auto& c : bundle.candidates) {
    const auto* m = r.find(c.id);
    if (!m) continue;
    if (m->status != "ok") ++bad;
    else if (c.executable.empty()) ok.emplace_back(m, &c);
  }
  std::sort(ok.begin(), ok.end(), [](auto& a, auto& b) { return a.first->latency_ms < b.first->latency_ms; });
  std::cout << fmt::format("{} on {} ({}): {} candidates measured, {} failed or wrong, {:.0f} s\n", bundle.program_name,
                           r.device_name, r.device_uri, r.measurements.size(), bad, r.seconds);
  for (size_t i = 0; i < ok.size() && i < 8; ++i) {
    const auto& summary = ok[i].second->summary;
    std::cout << fmt::format("  {:>9.4f} ms  {:>6}  {}  {}\n", ok[i].first->latency_ms,
                             ref && ref->status == "ok" ? fmt::format("{:.2f}x", ref->latency_ms / ok[i].first->latency_ms) : "",
                             ok[i].second->id, summary.size() > 100 ? summary.substr(0, 100) + "..." : summary);
  }
  for (const auto& w : tune::dispatch_winners(bundle, r, 0.0)) {
    if (w.baseline_id.empty()) continue;
    std::cout << fmt::format("  dispatch {}: {:.4f} ms alone{}\n", w.baseline_id.substr(0, w.baseline_id.size() - 5),
                             w.baseline_ms, w.best_id.empty() ? ", no faster candidate"
                                                              : fmt::format(", best {} {:.4f} ms ({:.2f}x)", w.best_id,
                                                                            w.best_ms, w.baseline_ms / w.best_ms));
  }
}

void print_record(const tuning::Record& r, const std::string& runtime_device) {
  std::cout << fmt::format("tuned {} for {} on {}: {:.4f} ms -> {:.4f} ms ({:.2f}x faster)\n", r.program_name, r.target_spec,
                           r.device, r.baseline_ms, r.latency_ms, r.latency_ms > 0 ? r.baseline_ms / r.latency_ms : 0);
  std::cout << "chosen: " << (r.summary.empty() ? "-" : r.summary) << "\n";
  std::cout << "record: " << r.key.substr(0, 16) << " (kiln compile applies it from now on; --no-tuning turns it off)\n";
  for (const auto& line : tune::deployment_lines(runtime_device, r.runtime_flags)) std::cout << line << "\n";
}

Result<int> tune_list(Context& context, bool json) {
  tuning::Database db(tuning_root(context.settings));
  auto records = KILN_TRY(db.list());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : records) out.push_back(tuning::to_json(r));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (records.empty()) std::cout << "no tuning records in " << db.root().string() << "\n";
  for (const auto& r : records) {
    std::cout << fmt::format("{}  {:<20} {:<14} {:<11} {:<5} {:>9.4f} ms (was {:.4f})  {}  {}{}\n", r.key.substr(0, 12),
                             r.program_name, r.target_spec, r.id.precision, r.id.invocation, r.latency_ms, r.baseline_ms,
                             r.device, r.measured_at,
                             r.id.options.empty() ? "" : "  with " + util::join(r.id.options, " "));
  }
  return 0;
}

Result<int> tune_show(Context& context, const std::string& what, bool json) {
  tuning::Database db(tuning_root(context.settings));
  auto records = KILN_TRY(db.list());
  std::vector<tuning::Record> hits;
  for (auto& r : records) {
    if (r.program_name == what || (what.size() >= 6 && util::starts_with(r.key, what))) hits.push_back(std::move(r));
  }
  if (hits.empty()) return fail(Code::kNotFound, "no tuning record matches '" + what + "' ('kiln tune list' shows them)");
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : hits) out.push_back(tuning::to_json(r));
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  for (const auto& r : hits) {
    std::string device = r.id.target_slug.substr(0, r.id.target_slug.find('-'));
    print_record(r, device == "cpu" ? "local-task" : device);
    for (const auto& [exe, s] : r.dispatches.items()) std::cout << "  " << exe << ": " << s.get<std::string>() << "\n";
    if (!r.compile_flags.empty()) std::cout << "  compiler options: " << util::join(r.compile_flags, " ") << "\n";
    if (!r.id.options.empty()) {
      std::cout << "  tuned with (and applied only to compiles with): " << util::join(r.id.options, " ") << "\n";
    }
  }
  return 0;
}

// The command line of every step.
struct TuneArgs {
  PrepareArgs one, prep;
  MeasureArgs one_measure, meas;
  std::string work, results_file, bundle_dir, what;
  bool json = false;
  CLI::App* prepare = nullptr;
  CLI::App* measure = nullptr;
  CLI::App* apply = nullptr;
  CLI::App* list = nullptr;
  CLI::App* show = nullptr;
  CLI::App* forget = nullptr;
};

void add_tune_options(CLI::App& app, TuneArgs& t) {
  app.require_subcommand(0, 1);
  add_prepare_args(app, t.one, false);
  add_measure_options(app, t.one_measure);
  app.add_option("--work-dir", t.work, "where the bundles go (default: MODEL.tune/)");
  app.get_option("model")->required(false);
  app.get_option("--target")->required(false);

  t.prepare = app.add_subcommand("prepare", "build the candidate bundle (compiler host)");
  add_prepare_args(*t.prepare, t.prep, true);
  t.prepare->add_option("--from", t.prep.from, "round 2: the results of round 1, whose winners are combined");

  t.measure = app.add_subcommand("measure", "measure a bundle's candidates (device host, runtime only)");
  t.measure->add_option("bundle", t.meas.bundle, "the bundle folder")->required();
  t.measure->add_option("--results", t.meas.results, "the results file (default: BUNDLE/results.json)");
  add_measure_options(*t.measure, t.meas);

  t.apply = app.add_subcommand("apply", "record the fastest correct candidate in the tuning database");
  t.apply->add_option("results", t.results_file, "a results file written by 'kiln tune measure'")->required();
  t.apply->add_option("--bundle", t.bundle_dir, "the bundle it measured (default: the results file's folder)");

  t.list = app.add_subcommand("list", "list the tuning records");
  t.list->add_flag("--json", t.json, "print JSON");
  t.show = app.add_subcommand("show", "show tuning records of a program (name or key prefix)");
  t.show->add_option("what", t.what, "program name or key prefix")->required();
  t.show->add_flag("--json", t.json, "print JSON");
  t.forget = app.add_subcommand("forget", "remove tuning records of a program (name or key prefix)");
  t.forget->add_option("what", t.what, "program name or key prefix")->required();
}

Result<int> tune_forget(Context& context, const std::string& what) {
  tuning::Database db(tuning_root(context.settings));
  int n = KILN_TRY(db.forget(what));
  if (n == 0) return fail(Code::kNotFound, "no tuning record matches '" + what + "' ('kiln tune list' shows them)");
  std::cout << fmt::format("removed {} tuning record(s)\n", n);
  return 0;
}

// All steps on this host: two rounds of prepare and measure, then apply.
Result<int> tune_here(Context& context, TuneArgs& t, tuning::Database& db) {
  if (t.one.model.empty() || t.one.target.empty()) {
    return fail(Code::kInvalidArgument, "give a program and --target, or a step: prepare, measure, apply (see 'kiln tune --help')");
  }
  fs::path dir = t.work.empty() ? fs::path(t.one.model + ".tune") : fs::path(t.work);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_empty(dir, ec)) {
    return fail(Code::kInvalidArgument, dir.string() + " exists and is not empty; remove it or give --work-dir");
  }
  auto first = KILN_TRY(do_prepare(t.one, dir / "round1", {}, context));
  auto first_results = KILN_TRY(do_measure(t.one_measure, first.dir, context));
  print_measurements(first, first_results);
  auto second = KILN_TRY(do_prepare(t.one, dir / "round2", dir / "round1" / "results.json", context));
  auto second_results = KILN_TRY(do_measure(t.one_measure, second.dir, context));
  print_measurements(second, second_results);
  auto record = KILN_TRY(tune::apply(dir / "round2" / "results.json", {}, db));
  print_record(record, second.runtime_device);
  return 0;
}

}  // namespace

Result<int> run_tune(Context& context) {
  CLI::App app{"Tune a program for a target on a real device: runtime options, whole-program compiler options and\n"
               "per-dispatch lowering configurations, each checked against the reference module's outputs.\n"
               "  kiln tune MODEL --target T [--device D]       all steps on this host\n"
               "  kiln tune prepare MODEL --target T -o BUNDLE  compiler host: build the candidates\n"
               "  kiln tune measure BUNDLE                      device host, runtime only: measure them\n"
               "  kiln tune prepare MODEL --target T -o BUNDLE2 --from BUNDLE/results.json   round 2: combine winners\n"
               "  kiln tune apply BUNDLE2/results.json          record the winner for kiln compile\n"
               "  kiln tune list | show NAME | forget NAME      the tuning database",
               "tune"};
  // Everything after "--" is passed to iree-compile, as with `kiln compile`.
  std::vector<std::string> passthrough;
  if (auto dash = std::find(context.args.begin(), context.args.end(), "--"); dash != context.args.end()) {
    passthrough.assign(dash + 1, context.args.end());
    context.args.erase(dash, context.args.end());
  }
  TuneArgs t;
  add_tune_options(app, t);
  if (KILN_TRY(parse_args(app, context))) return 0;
  for (auto* args : {&t.one, &t.prep}) args->flags.insert(args->flags.end(), passthrough.begin(), passthrough.end());
  if (!passthrough.empty() && !t.prepare->parsed() && (t.measure->parsed() || t.apply->parsed() || t.list->parsed() ||
                                                       t.show->parsed() || t.forget->parsed())) {
    return fail(Code::kInvalidArgument, "compiler flags after '--' go with 'kiln tune MODEL' or 'kiln tune prepare'");
  }

  if (t.list->parsed()) return tune_list(context, t.json);
  if (t.show->parsed()) return tune_show(context, t.what, t.json);
  if (t.forget->parsed()) return tune_forget(context, t.what);
  if (t.prepare->parsed()) {
    auto bundle = KILN_TRY(do_prepare(t.prep, t.prep.output, t.prep.from, context));
    std::cout << fmt::format("bundle {}: round {}, {} candidates for {} on {}; measure it with 'kiln tune measure {}'\n",
                             t.prep.output, bundle.round, bundle.candidates.size(), bundle.program_name,
                             bundle.target_spec, t.prep.output);
    MeasureArgs d;  // the plan under measure's defaults
    std::cout << "measure plan: "
              << tune::measure_plan(bundle, d.repetitions, d.min_time, d.dispatch_repetitions, d.dispatch_min_time).describe()
              << "\n";
    return 0;
  }
  if (t.measure->parsed()) {
    auto results = KILN_TRY(do_measure(t.meas, t.meas.bundle, context));
    auto bundle = KILN_TRY(tune::read_bundle(t.meas.bundle));
    print_measurements(bundle, results);
    return 0;
  }
  tuning::Database db(tuning_root(context.settings));
  if (t.apply->parsed()) {
    auto record = KILN_TRY(tune::apply(t.results_file, t.bundle_dir, db));
    auto bundle = KILN_TRY(tune::read_bundle(t.bundle_dir.empty() ? fs::absolute(t.results_file).parent_path()
                                                                  : fs::path(t.bundle_dir)));
    print_record(record, bundle.runtime_device);
    return 0;
  }
  return tune_here(context, t, db);
}

}  // namespace kiln::cli
