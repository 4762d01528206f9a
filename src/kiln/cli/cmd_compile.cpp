#include <iostream>

#include <fmt/format.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "kiln/cli/tuning_db.h"
#include "kiln/cache/store.h"
#include "kiln/cli/cache_setting.h"
#include "kiln/cli/executors.h"
#include "kiln/cli/output.h"
#include "kiln/cli/progress.h"
#include "kiln/compile/pool.h"
#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/signals.h"
#include "kiln/version.h"
#include "kiln/cli/parse.h"
#include "kiln/compile/compile.h"
#include "kiln/job/job.h"
#include "kiln/mlir/inspect.h"
#include "kiln/mlir/jax_export.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/strings.h"
#include "kiln/util/time.h"

namespace kiln::cli {

mlir::BytecodePrinter lazy_printer(const config::Config& config);

namespace {

namespace fs = std::filesystem;


struct Request {
  job::Job job;
  bool json = false;
  int jobs = 0;
  bool no_cache = false;
  bool explain_cache = false;
  std::string precision;
  std::string invocation;
  bool no_tuning = false;
  std::string executor;
  bool events = false;
  std::vector<mlir::Binding> bindings;  // --bind: one module per binding; empty: the program as it is
};

// The command line as CLI11 fills it.
struct Flags {
  std::vector<std::string> inputs, targets, flags, binds;
  std::string job_file, output_dir, name, opt_level, executor, precision, invocation;
  double timeout = 0;
  bool json = false, tiling = false, no_tiling = false, no_cache = false, explain = false, no_tuning = false;
  bool keep_f64 = false, events = false;
  int jobs = 0;
};

void add_options(CLI::App& app, Flags& f) {
  app.add_option("inputs", f.inputs, "StableHLO files");
  app.add_option("--job", f.job_file, "job file (JSON; see 'kiln schema')");
  app.add_option("-t,--target", f.targets, "target: cuda:<sm_NN|gpu>, cpu[:<arch>[:<cpu>]], vulkan:<t>, metal:macos, rocm:<gfx>");
  app.add_option("-o,--output-dir", f.output_dir, "output folder (default: .)");
  app.add_option("--name", f.name, "output base name (one input only; default: the input's name)");
  add_opt_level(app, f.opt_level);
  app.add_flag("--data-tiling", f.tiling, "enable data tiling");
  app.add_flag("--no-data-tiling", f.no_tiling, "disable data tiling");
  app.add_option("--flag", f.flags, "extra iree-compile flag, e.g. --flag=--iree-opt-const-eval=false");
  app.add_option("--timeout", f.timeout, "time limit per compile, seconds");
  app.add_flag("--json", f.json, "print JSON");
  app.add_option("-j,--jobs", f.jobs, "compile units at once (default: one per CPU)")->check(CLI::Range(1, 1024));
  app.add_option("--executor", f.executor, "where iree-compile runs: local, or docker (a hardened container)")
      ->check(CLI::IsMember({"local", "docker"}));
  app.add_flag("--no-cache", f.no_cache, "neither read nor fill the artifact cache");
  app.add_option("--precision", f.precision, "highest (default), f16-inputs or bf16-inputs: contractions take narrow inputs, "
                                             "accumulate in f32");
  app.add_option("--invocation", f.invocation, "sync (default) or async: the module's functions take a wait and a signal "
                                               "fence, so calls can be queued back to back");
  app.add_flag("--no-tuning", f.no_tuning, "ignore tuning records ('kiln tune') for these programs");
  app.add_flag("--keep-f64", f.keep_f64, "compute f64 as f64 (the compiler narrows it to f32 by default); cpu, cuda and "
                                         "rocm targets");
  app.add_flag("--explain-cache", f.explain, "say why each cache lookup missed");
  app.add_option("--bind", f.binds, "specialize a shape-polymorphic JAX export: NAME=SIZE[,NAME=SIZE...]; one static "
                                    "module per --bind, named NAME.b8.TARGET");
  app.add_flag("--events", f.events, "with --json: one JSON line on stderr when each unit starts and ends (for progress "
                                     "bars of programs that drive kiln)");
}

Result<std::vector<mlir::Binding>> parse_bindings(const std::vector<std::string>& binds) {
  std::vector<mlir::Binding> bindings;
  for (const auto& bind : binds) {
    mlir::Binding binding;
    for (const auto& part : util::split(bind, ',')) {
      auto pair = KILN_TRY(mlir::parse_binding(part));
      for (const auto& [seen, _] : binding) {
        if (seen == pair.first) return fail(Code::kInvalidArgument, "--bind " + bind + " names " + seen + " twice");
      }
      binding.push_back(std::move(pair));
    }
    bindings.push_back(std::move(binding));
  }
  return bindings;
}

// The job's inputs, targets and output folder: from --job, or from the
// command line.
Status job_inputs(Request& request, const Flags& f) {
  job::Job& job = request.job;
  if (!f.job_file.empty()) {
    if (!f.inputs.empty()) return fail(Code::kInvalidArgument, "give input files or --job, not both");
    job = KILN_TRY(job::load(f.job_file));
    if (!f.targets.empty()) return fail(Code::kInvalidArgument, "--target cannot be combined with --job; edit the job's targets");
    // --bind on the command line replaces the job's "bind".
    if (request.bindings.empty()) request.bindings = job.bindings;
    return {};
  }
  if (f.inputs.empty()) return fail(Code::kInvalidArgument, "no input: give a StableHLO file or --job (see 'kiln compile --help')");
  if (f.targets.empty()) return fail(Code::kInvalidArgument, "no target: add --target, e.g. --target cpu --target cuda:h100 ('kiln targets' lists them)");
  if (!f.name.empty() && f.inputs.size() > 1) return fail(Code::kInvalidArgument, "--name needs exactly one input");
  for (const auto& in : f.inputs) {
    KILN_TRY_STATUS(util::expect_regular_file(in));
    job.inputs.push_back({in, f.name.empty() ? compile::default_name(in) : f.name});
  }
  job.output_dir = f.output_dir.empty() ? fs::path(".") : fs::path(f.output_dir);
  for (const auto& spec : f.targets) job.targets.push_back(KILN_TRY(target::resolve(spec)));
  return {};
}

// The command line's options over the job's, then the settings' defaults.
Status job_options(job::Job& job, Flags& f, const std::vector<std::string>& passthrough, const config::Settings& settings) {
  if (!f.output_dir.empty()) job.output_dir = f.output_dir;
  if (!f.opt_level.empty()) job.options.opt_level = f.opt_level;
  if (!f.precision.empty()) job.options.precision = f.precision;
  if (!f.invocation.empty()) job.options.invocation = f.invocation;
  if (f.no_tuning) job.options.use_tuning = false;
  if (f.keep_f64) job.options.keep_f64 = true;
  if (f.tiling && f.no_tiling) return fail(Code::kInvalidArgument, "--data-tiling and --no-data-tiling contradict each other");
  if (f.tiling || f.no_tiling) job.options.data_tiling = f.tiling;
  f.flags.insert(f.flags.end(), passthrough.begin(), passthrough.end());
  job.options.extra_flags.insert(job.options.extra_flags.end(), f.flags.begin(), f.flags.end());
  if (job.options.opt_level.empty()) job.options.opt_level = settings.opt_level;
  if (f.timeout > 0) {
    job.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout * 1000));
  } else if (!job.has_timeout) {
    job.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(settings.compile_timeout * 1000));
  }
  return compile::validate(job.options);
}

// Builds the job from the command line (or loads --job and applies the
// command line's overrides on top). Empty when --help was printed.
Result<std::optional<Request>> parse_request(Context& context) {
  // Everything after "--" is passed to iree-compile.
  std::vector<std::string> passthrough;
  if (auto dash = std::find(context.args.begin(), context.args.end(), "--"); dash != context.args.end()) {
    passthrough.assign(dash + 1, context.args.end());
    context.args.erase(dash, context.args.end());
  }
  CLI::App app{"Compile StableHLO into IREE modules.\n"
               "  kiln compile model.mlir --target cuda:h100 --target cpu -o out/\n"
               "  kiln compile --job job.json\n"
               "Compiler flags after '--' (or --flag=...) are passed through and recorded.",
               "compile"};
  Flags f;
  add_options(app, f);
  if (KILN_TRY(parse_args(app, context))) return std::nullopt;
  if (f.events && !f.json) return fail(Code::kInvalidArgument, "--events goes with --json");

  Request request;
  request.json = f.json;
  request.jobs = f.jobs;
  request.no_cache = f.no_cache;
  request.precision = f.precision;
  request.invocation = f.invocation;
  request.no_tuning = f.no_tuning;
  request.explain_cache = f.explain;
  request.executor = f.executor;
  request.events = f.events;
  request.bindings = KILN_TRY(parse_bindings(f.binds));
  KILN_TRY_STATUS(job_inputs(request, f));
  KILN_TRY_STATUS(job_options(request.job, f, passthrough, context.settings));
  return std::optional<Request>(std::move(request));
}

struct UnitRun {
  const job::Input* input;
  const target::Target* target;
  std::string label;
  mlir::Binding binding;
  Result<compile::Outcome> outcome = fail(Code::kInternal, "not run");
  double seconds = 0;
};

Result<compile::PoolOptions> pool_options(const Request& request, const config::Settings& settings) {
  compile::PoolOptions o;
  o.jobs = request.jobs ? request.jobs : settings.jobs;
  if (o.jobs == 0) o.jobs = compile::available_cpus();
  o.memory_budget = settings.memory_budget ? *settings.memory_budget : compile::available_memory() / 10 * 8;
  return o;
}

std::string display_name(const UnitRun& r) {
  return r.binding.empty() ? r.input->name : r.input->name + "." + mlir::binding_slug(r.binding);
}

nlohmann::json manifest_json(const std::vector<UnitRun>& runs) {
  nlohmann::json artifacts = nlohmann::json::array(), failures = nlohmann::json::array();
  for (const auto& r : runs) {
    if (r.outcome) {
      const auto& m = r.outcome->record;
      artifacts.push_back({{"input", r.input->path.string()}, {"name", display_name(r)}, {"target", r.target->spec},
                           {"module", r.outcome->module_path.filename().string()}, {"sha256", m.output_sha256},
                           {"size_bytes", m.output_size_bytes},
                           {"metadata", r.outcome->metadata_path.filename().string()},
                           {"cache_hit", r.outcome->cache_hit}});
    } else {
      failures.push_back({{"input", r.input->path.string()}, {"target", r.target->spec},
                          {"code", code_name(r.outcome.error().code)}, {"message", r.outcome.error().message}});
    }
  }
  return {{"format", "kiln-manifest"}, {"format_version", 1}, {"kiln_version", KILN_VERSION},
          {"artifacts", artifacts}, {"failures", failures}};
}

void print_summary(const std::vector<UnitRun>& runs) {
  std::cout << fmt::format("\n{:<24} {:<22} {:<8} {:>9} {:>10}  {}\n", "input", "target", "result", "time", "size", "module");
  for (const auto& r : runs) {
    if (r.outcome) {
      std::cout << fmt::format("{:<24} {:<22} {:<8} {:>7.2f} s {:>10}  {}\n", display_name(r), r.target->spec,
                               r.outcome->cache_hit ? "cached" : "built", r.seconds,
                               util::human_bytes(static_cast<double>(r.outcome->record.output_size_bytes)),
                               r.outcome->module_path.string());
    } else {
      std::cout << fmt::format("{:<24} {:<22} {:<8} {:>7.2f} s {:>10}  {}\n", display_name(r), r.target->spec, "FAILED",
                               r.seconds, "-", code_name(r.outcome.error().code));
    }
  }
}

// One unit per input, target and binding (or per input and target when
// nothing is bound); module_of maps each unit to its input.
std::vector<UnitRun> plan_units(const job::Job& job, const std::vector<mlir::Binding>& bindings,
                                std::vector<size_t>& module_of) {
  std::vector<UnitRun> runs;
  for (size_t i = 0; i < job.inputs.size(); ++i) {
    for (const auto& target : job.targets) {
      if (bindings.empty()) {
        runs.push_back({&job.inputs[i], &target, job.inputs[i].name + " -> " + target.spec, {}});
        module_of.push_back(i);
      }
      for (const auto& binding : bindings) {
        std::string named = job.inputs[i].name + "." + mlir::binding_slug(binding);
        runs.push_back({&job.inputs[i], &target, named + " -> " + target.spec, binding});
        module_of.push_back(i);
      }
    }
  }
  return runs;
}

// --events: one JSON line on stderr as each unit starts and ends. Units start
// and end on the pool's threads; a line is written whole.
void add_json_events(compile::PoolEvents& events, std::vector<UnitRun>& runs) {
  auto event_mu = std::make_shared<std::mutex>();
  auto emit = [&runs, event_mu](size_t i, nlohmann::json line) {
    line["unit"] = i;
    line["units"] = runs.size();
    line["input"] = runs[i].input->path.string();
    line["target"] = runs[i].target->spec;
    std::string text = line.dump() + "\n";
    std::lock_guard<std::mutex> lock(*event_mu);
    std::cerr << text << std::flush;
  };
  events.started = [emit](size_t i) { emit(i, {{"event", "started"}}); };
  events.finished = [emit, &runs](size_t i) {
    const auto& o = runs[i].outcome;
    nlohmann::json line = {{"event", "finished"}, {"ok", o.has_value()}, {"seconds", runs[i].seconds}};
    if (o) line["cache_hit"] = o->cache_hit;
    if (!o) line["code"] = code_name(o.error().code);
    emit(i, std::move(line));
  };
}

compile::PoolEvents pool_events(std::vector<UnitRun>& runs, Progress& progress, const Request& request) {
  compile::PoolEvents events;
  events.crashed = [&runs](size_t i, const std::string& what) {
    runs[i].outcome = fail(Code::kInternal, "internal error while compiling this unit: " + what +
                                                "; the other units were not affected; please report it");
  };
  if (!request.json) {
    events.started = [&progress](size_t i) { progress.started(i); };
    events.finished = [&runs, &progress](size_t i) {
      const auto& o = runs[i].outcome;
      progress.finished(i, o.has_value(), o ? (o->cache_hit ? "(cache hit)" : "") : code_name(o.error().code));
    };
    events.tick = [&progress] { progress.tick(); };
  } else if (request.events) {
    add_json_events(events, runs);
  }
  return events;
}

// Each unit's result for --json, printing warnings and errors on stderr
// unless quiet; the first failure's error is kept for the exit status.
nlohmann::json units_json(const std::vector<UnitRun>& runs, bool quiet, std::optional<Error>& first_error) {
  nlohmann::json units = nlohmann::json::array();
  for (const auto& r : runs) {
    if (r.outcome) {
      units.push_back({{"input", r.input->path.string()}, {"target", r.target->spec}, {"ok", true},
                       {"module", r.outcome->module_path.string()}, {"metadata", r.outcome->metadata_path.string()},
                       {"cache_hit", r.outcome->cache_hit}, {"record", r.outcome->record.json}});
      if (!r.outcome->warning.empty()) units.back()["warning"] = r.outcome->warning;
      if (!r.outcome->record.fallbacks.empty()) units.back()["fallbacks"] = r.outcome->record.fallbacks;
      if (!quiet) {
        if (!r.outcome->cache_explanation.empty()) std::cerr << r.label << ": " << r.outcome->cache_explanation << "\n";
        if (!r.outcome->warning.empty()) std::cerr << "kiln: warning: " << r.label << ": " << r.outcome->warning << "\n";
        if (!r.outcome->note.empty()) std::cerr << "note: " << r.label << ": " << r.outcome->note << "\n";
        if (r.outcome->cache_hit && !r.outcome->record.fallbacks.empty()) {
          std::cerr << "note: " << r.label << ": the cached module was built with the fallback "
                    << util::join(r.outcome->record.fallbacks, ", ") << " (its metadata says why)\n";
        }
        if (!r.outcome->record.target_note.empty() && !r.outcome->cache_hit && runs.size() == 1) {
          std::cerr << "note: " << r.outcome->record.target_note << "\n";
        }
      }
    } else {
      if (!first_error) first_error = r.outcome.error();
      if (!quiet) std::cerr << "kiln: error: " << r.outcome.error().message << "\n";
      units.push_back({{"input", r.input->path.string()}, {"target", r.target->spec}, {"ok", false},
                       {"error", {{"code", code_name(r.outcome.error().code)}, {"message", r.outcome.error().message}}}});
    }
  }
  return units;
}

// The manifest comes last, when every artifact it lists is in place. A run
// that produced nothing writes nothing, not even a manifest. Then the report.
Result<int> finish(const std::vector<UnitRun>& runs, const Request& request) {
  const job::Job& job = request.job;
  nlohmann::json manifest = manifest_json(runs);
  manifest["created_at"] = util::utc_timestamp();
  bool produced = !manifest["artifacts"].empty();
  if (produced) KILN_TRY_STATUS(util::write_file_atomic(job.output_dir / "manifest.json", manifest.dump(2) + "\n"));

  std::optional<Error> first_error;
  nlohmann::json units = units_json(runs, request.json, first_error);
  if (request.json) {
    std::cout << nlohmann::json{{"ok", !first_error}, {"units", units},
                                {"manifest", produced ? nlohmann::json((job.output_dir / "manifest.json").string())
                                                      : nlohmann::json(nullptr)}}.dump(2) << "\n";
  } else {
    print_summary(runs);
    if (produced) std::cout << "manifest: " << (job.output_dir / "manifest.json").string() << "\n";
  }
  return first_error ? exit_code(first_error->code) : 0;
}

}  // namespace

Result<int> run_compile(Context& context) {
  auto request = KILN_TRY(parse_request(context));
  if (!request) return 0;
  job::Job& job = request->job;

  auto selected = KILN_TRY(select_executor(context, request->executor, Need::kCompiler));
  const toolchain::Toolchain& tools = selected.tools;
  compile::Executor* executor = selected.executor.get();
  auto store = KILN_TRY(cache_for_compiles(context.settings, request->no_cache));
  auto pool = KILN_TRY(pool_options(*request, context.settings));
  std::error_code ec;
  fs::create_directories(job.output_dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create output folder " + job.output_dir.string() + ": " + ec.message());

  // Inputs are read once each, before any compile starts.
  auto printer = lazy_printer(context.config);
  std::vector<Result<mlir::ModuleInfo>> modules;
  std::vector<std::string> hashes;
  for (const auto& input : job.inputs) {
    modules.push_back(mlir::inspect_file(input.path, printer));
    hashes.push_back(modules.back() ? util::sha256_file(input.path).value_or("") : "");
  }
  std::vector<size_t> module_of;
  std::vector<UnitRun> runs = plan_units(job, request->bindings, module_of);
  std::vector<std::string> labels;
  for (const auto& r : runs) labels.push_back(r.label);
  Progress progress(labels, !request->json && stderr_is_terminal());

  // Memory per unit: the largest compiler peak seen so far, 1 GiB before any.
  std::atomic<uint64_t> largest_peak{0};
  auto estimate = [&] { return std::max<uint64_t>(largest_peak.load(), largest_peak.load() ? 0 : 1ull << 30); };
  compile::CacheUse cache_use{store ? &*store : nullptr, request->explain_cache};
  auto tuning = tuning_for_compiles(context.settings);
  auto work = [&](size_t i) {
    auto started = std::chrono::steady_clock::now();
    UnitRun& r = runs[i];
    const auto& module = modules[module_of[i]];
    r.outcome = module ? compile::run({r.input->path, r.input->name, *r.target, job.output_dir, nullptr, hashes[module_of[i]],
                                       r.binding},
                                      job.options, *module,
                                      tools, *executor, cache_use, tuning ? &*tuning : nullptr)
                       : Result<compile::Outcome>(tl::unexpected(module.error()));
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (r.outcome) {
      uint64_t peak = r.outcome->record.peak_rss_bytes;
      uint64_t seen = largest_peak.load();
      while (peak > seen && !largest_peak.compare_exchange_weak(seen, peak)) {
      }
    }
  };
  compile::run_pool(runs.size(), pool, estimate, work, pool_events(runs, progress, *request));
  if (!request->json) progress.close();
  if (util::interrupted()) return fail(Code::kCancelled, "interrupted; running compiles were stopped and their files removed");
  return finish(runs, *request);
}

}  // namespace kiln::cli
