// `kiln tune prepare`: the candidate set of one program on one target.
#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "kiln/compile/compile.h"
#include "kiln/tune/dispatches.h"
#include "kiln/tune/executable.h"
#include "kiln/tune/kernel.h"
#include "kiln/tune/space.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"
#include "kiln/util/orphans.h"
#include "kiln/util/progress.h"
#include "kiln/util/hash.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"
#include "kiln/util/time.h"

namespace kiln::tune {
namespace {

using nlohmann::json;

// A module to compile, and the candidates (runtime option sets) that use it.
struct Build {
  std::string id;
  std::vector<std::string> compile_flags;
  std::map<std::string, std::string> configs;     // executable -> text
  std::map<std::string, std::string> dispatches;  // executable -> summary
  std::string summary;
  std::string level;
  Result<compile::Outcome> outcome = tl::unexpected(Error{Code::kInternal, "not compiled"});
};

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return line.size() > 300 ? line.substr(0, 300) + "..." : line;
}

std::string module_path(const std::string& id, const target::Target& target) {
  return "modules/" + id + "." + target.slug + ".vmfb";
}

std::string gpu_of(const target::Target& t) {
  std::string spec = t.spec;
  size_t colon = spec.find(':');
  std::string value = colon == std::string::npos ? "" : util::to_lower(spec.substr(colon + 1));
  return util::starts_with(value, "sm_") ? "" : value;
}

// The options every whole-program candidate is compiled with: the user's,
// the policy and convention being tuned, and the candidate's own flags.
compile::Options build_options(const PrepareOptions& o, const Build& b, const fs::path& stage) {
  compile::Options options = o.compile;
  options.precision = o.precision;
  options.invocation = o.invocation;
  options.use_tuning = false;
  options.timeout = o.compile_timeout;
  options.extra_flags.insert(options.extra_flags.end(), b.compile_flags.begin(), b.compile_flags.end());
  options.executable_configs = b.configs.empty() ? fs::path() : stage / "configs" / b.id;
  return options;
}

// Compiles every build in the pool; fills in their outcomes.
void compile_all(std::vector<Build>& builds, const PrepareOptions& o, const fs::path& stage,
                 const toolchain::Toolchain& tools, compile::Executor& executor, const std::string& sha,
                 const std::string& what) {
  std::optional<util::Progress> bar;
  if (o.progress && !what.empty() && !builds.empty()) bar.emplace(*o.progress, "[tune] " + what + " ", builds.size(), o.terminal);
  auto work = [&](size_t i) {
    Build& b = builds[i];
    b.outcome = compile::run({o.model, b.id, o.target, stage / "modules", nullptr, sha}, build_options(o, b, stage),
                             *o.module, tools, executor);
    if (bar) bar->advance(b.id);
  };
  compile::PoolEvents events;
  events.crashed = [&](size_t i, const std::string& what) {
    builds[i].outcome = fail(Code::kInternal, "internal error while compiling this candidate: " + what);
  };
  compile::run_pool(builds.size(), o.pool, [] { return uint64_t{1} << 30; }, work, events);
}

Status write_configs(const fs::path& stage, const Build& b) {
  if (b.configs.empty()) return {};
  fs::path dir = stage / "configs" / b.id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + dir.string() + ": " + ec.message());
  for (const auto& [exe, text] : b.configs) {
    KILN_TRY_STATUS(util::write_file_atomic(dir / tuning::config_file_name(exe), text));
  }
  return {};
}

// A dispatch candidate: one executable's benchmark program compiled with a
// configuration substituted (none for the executable's baseline).
struct BenchBuild {
  std::string id, digest, name, summary, dispatch;
  fs::path source;                              // the dumped benchmark program
  std::map<std::string, std::string> configs;   // configuration name -> text (.mlir, .ptx)
  Result<std::string> module_sha = tl::unexpected(Error{Code::kInternal, "not compiled"});
};

// kiln's own kernels for a dispatch, when it has any (kernel.h). A kernel
// runs in the compiler's launch, so the dispatch is compiled with the
// configuration the kernel asks for, or else with the compiler's own when
// its block size fits, or else the first tile candidate whose block size
// does. What was added, or why nothing was, goes into the dispatch's entry.
void add_kernels(const Executable& exe, const std::string& arch, const std::vector<DispatchCandidate>& candidates,
                 json& entry, std::vector<BenchBuild>& builds, const BenchBuild& base) {
  auto kernels = kernels_for(exe, arch);
  if (!kernels) {
    if (exe.op_kind.find("matmul") != std::string::npos) entry["kernels"] = "none: " + kernels.error().message;
    return;
  }
  entry["kernels"] = json::array();
  for (auto& kernel : *kernels) {
    BenchBuild b = base;
    b.id = exe.name + "-" + kernel.id;
    b.summary = exe.name + ": " + kernel.summary;
    if (!kernel.root.empty()) {
      b.configs[exe.name] = render(exe, kernel.root, kernel.workgroup_size);
    } else if (exe.workgroup_size != kernel.workgroup_size) {
      auto fits = std::find_if(candidates.begin(), candidates.end(), [&](const DispatchCandidate& c) {
        return c.workgroup_size == kernel.workgroup_size && c.pipeline.empty();
      });
      if (fits == candidates.end()) continue;
      b.configs[exe.name] = render(exe, fits->root, fits->workgroup_size, fits->pipeline_options, fits->pipeline);
    }
    b.configs[exe.name + ".ptx"] = std::move(kernel.ptx);
    b.dispatch = kernel.summary;
    entry["kernels"].push_back(kernel.summary);
    builds.push_back(std::move(b));
  }
}

// One distinct executable (by digest) and the names it has in the program.
struct Distinct {
  Executable exe;
  std::string digest;
  std::vector<std::string> names;
};

// The program's executables, identical ones together (dispatches.h).
Result<std::vector<Distinct>> distinct_executables(const fs::path& dump) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dump, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  std::vector<Distinct> out;
  std::map<std::string, size_t> seen;
  for (const auto& file : files) {
    auto text = KILN_TRY(util::read_file(file));
    auto exe = parse_executable(text);
    std::string name = exe ? exe->name : executable_name(text);
    if (name.empty()) continue;
    std::string digest = executable_digest(text, name);
    auto [it, fresh] = seen.emplace(digest, out.size());
    if (fresh) {
      Executable e = exe ? std::move(*exe) : Executable{};
      e.name = name;
      out.push_back({std::move(e), digest, {}});
    }
    out[it->second].names.push_back(name);
  }
  return out;
}

json dispatch_entry(const Distinct& d, size_t candidates) {
  const Executable& e = d.exe;
  return {{"executable", e.name}, {"digest", d.digest}, {"names", d.names}, {"function", e.function},
          {"op", e.op_kind}, {"bounds", e.bounds}, {"pipeline", e.pipeline}, {"family", family_name(e.family)},
          {"configuration", describe(e.root)}, {"candidates", candidates}};
}

// Round 1's dispatch candidates: for each distinct executable with a
// benchmark program, its baseline and its configurations, within the
// budget of dispatch candidates.
Result<std::vector<BenchBuild>> explore_dispatches(const PrepareOptions& o, const fs::path& stage, json& dispatches,
                                                   const Log& log) {
  auto distinct = KILN_TRY(distinct_executables(stage / "dump"));
  auto sources = KILN_TRY(benchmark_sources(stage / "bench-src"));
  std::vector<std::vector<DispatchCandidate>> all;
  std::vector<size_t> wanted;
  for (const auto& d : distinct) {
    all.push_back(d.exe.family == Family::kNone ? std::vector<DispatchCandidate>{} : dispatch_candidates(d.exe, o.per_dispatch));
    wanted.push_back(sources.count(d.exe.name) ? all.back().size() : 0);
  }
  auto shares = share_budget(wanted, o.max_dispatch_candidates);
  std::vector<BenchBuild> builds;
  for (size_t i = 0; i < distinct.size(); ++i) {
    const auto& d = distinct[i];
    auto src = sources.find(d.exe.name);
    dispatches.push_back(dispatch_entry(d, shares[i]));
    if (src == sources.end() || (all[i].empty() && o.target.backend != target::Backend::kCuda)) continue;
    BenchBuild base{d.exe.name + "-base", d.digest, d.exe.name, d.exe.name + ": the compiler's own configuration", "", src->second, {}};
    size_t before = builds.size();
    for (size_t k = 0; k < shares[i]; ++k) {
      const auto& c = all[i][k];
      BenchBuild b = base;
      b.id = fmt::format("{}-{:02}", d.exe.name, k);
      b.summary = d.exe.name + ": " + c.summary;
      b.dispatch = c.summary;
      b.configs[d.exe.name] = render(d.exe, c.root, c.workgroup_size, c.pipeline_options, c.pipeline);
      builds.push_back(std::move(b));
    }
    if (o.target.backend == target::Backend::kCuda && d.exe.family != Family::kNone) {
      add_kernels(d.exe, o.target.arch, all[i], dispatches.back(), builds, base);
    }
    if (builds.size() > before) builds.insert(builds.begin() + static_cast<std::ptrdiff_t>(before), base);
  }
  size_t baselines = std::count_if(builds.begin(), builds.end(), [](const BenchBuild& b) { return b.configs.empty(); });
  log(fmt::format("{} executables, {} distinct, {} with candidates; {} dispatch modules: {} configurations (budget {}) "
                  "and {} baselines",
                  sources.size(), distinct.size(), baselines, builds.size(), builds.size() - baselines,
                  o.max_dispatch_candidates, baselines));
  return builds;
}

// The flags a dispatch benchmark is compiled with: the target's and the
// user's options (not the calling convention: the benchmark program has its
// own functions, which the runtime's benchmark tool calls).
std::vector<std::string> bench_flags(const PrepareOptions& o) {
  std::vector<std::string> flags = o.target.flags;
  auto user = compile::tuning_options(o.compile);
  flags.insert(flags.end(), user.begin(), user.end());
  return flags;
}

// Compiles one dispatch candidate in a working folder of its own, the
// configurations named by the same relative paths for every candidate (the
// compiler records them in the module), so equal configurations give equal
// modules.
void compile_bench(BenchBuild& b, const PrepareOptions& o, const fs::path& stage, const toolchain::Toolchain& tools,
                   compile::Executor& executor) {
  fs::path work = stage / "work" / b.id;
  std::error_code ec;
  fs::create_directories(work, ec);
  std::vector<std::string> argv = {tools.compile.string(), fs::absolute(b.source).string()};
  auto flags = bench_flags(o);
  argv.insert(argv.end(), flags.begin(), flags.end());
  bool configs = false, objects = false;
  for (const auto& [name, text] : b.configs) {
    bool object = tuning::is_kernel_object(name);
    fs::path dir = work / (object ? "executable-objects" : "executable-configs");
    fs::create_directories(dir, ec);
    if (auto w = util::write_file_atomic(dir / tuning::config_file_name(name), text); !w) {
      b.module_sha = tl::unexpected(w.error());
      return;
    }
    (object ? objects : configs) = true;
  }
  if (configs) argv.push_back("--iree-hal-substitute-executable-configurations-from=executable-configs");
  if (objects) argv.push_back("--iree-hal-substitute-executable-objects-from=executable-objects");
  fs::path module = fs::absolute(stage / "dispatches" / (b.id + ".vmfb"));
  argv.insert(argv.end(), {"-o", module.string()});
  auto r = executor.run({argv, b.source, work, o.compile_timeout, {}, false, nullptr});
  fs::remove_all(work, ec);
  if (!r) {
    b.module_sha = tl::unexpected(r.error());
  } else if (!r->ok()) {
    b.module_sha = fail(Code::kInvalidArgument, fmt::format("the compiler rejected it ({}): {}", util::describe_outcome(*r),
                                                            compile::summarize_diagnostics(r->err)));
  } else {
    b.module_sha = util::sha256_file(module);
  }
}

void compile_benches(std::vector<BenchBuild>& builds, const PrepareOptions& o, const fs::path& stage,
                     const toolchain::Toolchain& tools, compile::Executor& executor) {
  std::optional<util::Progress> bar;
  if (o.progress && !builds.empty()) bar.emplace(*o.progress, "[tune] dispatch candidates ", builds.size(), o.terminal);
  auto work = [&](size_t i) {
    compile_bench(builds[i], o, stage, tools, executor);
    if (bar) bar->advance(builds[i].id);
  };
  compile::PoolEvents events;
  events.crashed = [&](size_t i, const std::string& what) {
    builds[i].module_sha = fail(Code::kInternal, "internal error while compiling this candidate: " + what);
  };
  compile::run_pool(builds.size(), o.pool, [] { return uint64_t{1} << 29; }, work, events);
}

// Round 1: the whole-program option sets (the reshaping ones as whole
// programs only: their executables are other ones).
Result<std::vector<Build>> explore_programs(const PrepareOptions& o, const fs::path& dump) {
  std::vector<Build> builds;
  for (const auto& set : program_option_sets(o.target.backend)) {
    if (set.flags.empty()) continue;
    builds.push_back({"prog-" + set.name, set.flags, {}, {}, set.name, "program"});
  }
  std::vector<Executable> exes;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dump, ec)) {
    auto text = KILN_TRY(util::read_file(e.path()));
    if (auto exe = parse_executable(text)) exes.push_back(std::move(*exe));
  }
  for (const auto& set : reshaping_option_sets(o.target.backend, exes)) {
    builds.push_back({"prog-" + set.name, set.flags, {}, {}, set.name + " (its dispatches untuned)", "reshaped"});
  }
  return builds;
}

struct Ranked {
  const Candidate* candidate;
  double ms;
};

bool faster(const Ranked& a, const Ranked& b) { return a.ms < b.ms; }

// Round 1's whole-program and runtime candidates, fastest first.
void rank_round_one(const Bundle& first, const Results& results, double reference_ms, std::vector<Ranked>& programs,
                    std::vector<Ranked>& runtimes) {
  runtimes.push_back({&first.candidates.front(), reference_ms});
  for (const auto& c : first.candidates) {
    const Measurement* m = results.find(c.id);
    if (!m || m->status != "ok" || !c.executable.empty()) continue;
    if (c.level == "program" || c.level == "reshaped") programs.push_back({&c, m->latency_ms});
    if (c.level == "runtime") runtimes.push_back({&c, m->latency_ms});
  }
  std::sort(programs.begin(), programs.end(), faster);
  std::sort(runtimes.begin(), runtimes.end(), faster);
}

// Each executable's winner, under each of the program's names for it.
Result<Build> combined_build(const Bundle& first, const Results& results, const fs::path& dump, json& applied) {
  Build b{"combined", {}, {}, {}, "", "combined"};
  std::map<std::string, const Candidate*> by_digest;
  std::map<std::string, DispatchWinner> winners;
  for (const auto& w : dispatch_winners(first, results)) {
    if (w.best_id.empty()) continue;
    for (const auto& c : first.candidates) {
      if (c.id == w.best_id) by_digest[w.digest] = &c;
    }
    winners[w.digest] = w;
  }
  auto distinct = KILN_TRY(distinct_executables(dump));
  std::vector<std::string> parts;
  for (const auto& d : distinct) {
    auto it = by_digest.find(d.digest);
    if (it == by_digest.end()) continue;
    const Candidate& c = *it->second;
    std::string rep = c.dispatches.empty() ? "" : c.dispatches.begin()->first;
    for (const auto& name : d.names) {
      for (const auto& [cfg, rel] : c.configs) {
        auto text = KILN_TRY(util::read_file(first.dir / rel));
        b.configs[rename_executable(cfg, rep, name)] = rename_executable(text, rep, name);
      }
      b.dispatches[name] = c.dispatches.begin()->second;
    }
    const auto& w = winners[d.digest];
    applied.push_back({{"digest", d.digest}, {"names", d.names}, {"candidate", c.id}, {"baseline_ms", w.baseline_ms},
                       {"best_ms", w.best_ms}});
    parts.push_back(fmt::format("{}: {} ({:.3f}x alone)", rep, c.dispatches.begin()->second, w.baseline_ms / w.best_ms));
  }
  b.summary = util::join(parts, "; ");
  return b;
}

// Round 1's ranking of runtime options holds for its own calling convention;
// under another (queued calls) the allocator's choices weigh differently, so
// more of them are measured again.
std::vector<std::string> runtime_choices(const PrepareOptions& o, const Bundle& first, const std::vector<Ranked>& runtimes) {
  std::vector<std::string> names = {"defaults"};
  size_t keep = first.invocation == compile::invocation_name(o.invocation) ? 2 : 4;
  for (const auto& r : runtimes) {
    if (names.size() >= keep) break;
    if (r.candidate->runtime_name != "defaults") names.push_back(r.candidate->runtime_name);
  }
  return names;
}

// Round 2: every executable's winner in one program, with and without the
// best whole-program option set that does not reshape the program.
Result<std::vector<Build>> combine(const PrepareOptions& o, const Bundle& first, const Results& results,
                                   const fs::path& dump, Bundle& bundle, std::vector<std::string>& runtime_names,
                                   const Log& log) {
  const Measurement* ref = results.find("reference");
  if (!ref || ref->status != "ok") return fail(Code::kInvalidArgument, "the round-1 results have no measurement of the reference");
  std::vector<Ranked> programs, runtimes;
  rank_round_one(first, results, ref->latency_ms, programs, runtimes);
  double bar = ref->latency_ms * 0.98;  // a winner must beat the reference by more than the noise
  std::vector<Build> builds;
  Build combined = KILN_TRY(combined_build(first, results, dump, bundle.executables));
  if (!combined.configs.empty()) builds.push_back(combined);
  const Candidate* program = !programs.empty() && programs[0].ms < bar ? programs[0].candidate : nullptr;
  // A reshaping option set has other executables: the winners' do not apply.
  bool reshapes = program && program->level == "reshaped";
  if (program && !combined.configs.empty() && !reshapes) {
    Build both = combined;
    both.id = "combined+" + program->id;
    both.compile_flags = program->compile_flags;
    both.summary = program->summary + "; " + combined.summary;
    builds.push_back(both);
  }
  if (program) builds.push_back({program->id, program->compile_flags, {}, {}, program->summary, program->level});
  runtime_names = runtime_choices(o, first, runtimes);
  if (first.invocation != compile::invocation_name(o.invocation)) {
    log(fmt::format("round 2 builds for {} calls; round 1 measured {} calls", compile::invocation_name(o.invocation),
                    first.invocation));
  }
  log(fmt::format("round 2: {} of {} distinct executables have a winner; {} modules x {} runtime option sets ({})",
                  bundle.executables.size(), first.dispatches.size(), builds.size() + 1, runtime_names.size(),
                  util::join(runtime_names, ", ")));
  return builds;
}

Status check_destination(const fs::path& output) {
  std::error_code ec;
  if (fs::exists(output / "bundle.json", ec)) {
    return fail(Code::kInvalidArgument, fmt::format("{} already holds a tuning bundle; choose another folder or remove it",
                                                    output.string()));
  }
  if (fs::exists(output, ec) && !fs::is_empty(output, ec)) {
    return fail(Code::kInvalidArgument, fmt::format("{} exists and is not empty; give a new folder for the bundle", output.string()));
  }
  return {};
}

// The program's first public function, which must have static shapes.
Result<const mlir::Function*> function_to_tune(const PrepareOptions& o) {
  const mlir::Function* fn = nullptr;
  for (const auto& f : o.module->functions) {
    if (f.is_public) {
      fn = &f;
      break;
    }
  }
  if (!fn) return fail(Code::kInvalidArgument, o.model.string() + " has no public function to tune");
  for (const auto& v : fn->arguments) {
    if (v.type.has_dynamic_dims() || !v.type.ranked) {
      return fail(Code::kInvalidArgument, fmt::format("@{} takes {} with dynamic dimensions; tuning needs static shapes "
                                                      "(export the program for the batch size you deploy)",
                                                      fn->name, v.type.text()));
    }
  }
  return fn;
}

// Round 2 reads round 1 before anything is made.
Status read_round_one(const PrepareOptions& o, const std::string& sha, std::optional<Bundle>& first,
                      std::optional<Results>& first_results) {
  first_results = KILN_TRY(read_results(o.from));
  first = KILN_TRY(read_bundle(fs::absolute(o.from).parent_path()));
  if (KILN_TRY(bundle_digest(first->dir)) != first_results->bundle_digest) {
    return fail(Code::kInvalidArgument, fmt::format("{} does not belong to the bundle in {}", o.from.string(), first->dir.string()));
  }
  if (first->program_sha256 != sha || first->target_slug != o.target.slug ||
      first->precision != compile::precision_name(o.precision)) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} measured {} for {} ({}); prepare round 2 with the same program, target and precision",
                            o.from.string(), first->program_name, first->target_spec, first->precision));
  }
  if (first->options != compile::tuning_options(o.compile)) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} was measured with compiler options [{}], round 2 is asked for [{}]; prepare round 2 with "
                            "the same options",
                            o.from.string(), util::join(first->options, " "),
                            util::join(compile::tuning_options(o.compile), " ")));
  }
  return {};
}

Bundle new_bundle(const PrepareOptions& o, const toolchain::Toolchain& tools, const std::string& sha,
                  const mlir::Function& fn, int round) {
  Bundle bundle;
  bundle.dir = o.output;
  bundle.round = round;
  bundle.iree_release = tools.release;
  bundle.target_spec = o.target.spec;
  bundle.target_slug = o.target.slug;
  bundle.backend = target::backend_name(o.target.backend);
  bundle.runtime_device = o.target.runtime_device;
  bundle.gpu = o.target.backend == target::Backend::kCuda || o.target.backend == target::Backend::kRocm ? gpu_of(o.target) : "";
  bundle.program_name = compile::default_name(o.model);
  bundle.program_sha256 = sha;
  bundle.precision = compile::precision_name(o.precision);
  bundle.invocation = compile::invocation_name(o.invocation);
  bundle.options = compile::tuning_options(o.compile);
  bundle.function = fn.name;
  bundle.seed = o.seed;
  bundle.created_at = util::utc_timestamp();
  return bundle;
}

// Keeps each distinct module once: a candidate whose module is byte-identical
// to an earlier one would only measure the same thing again.
std::vector<const Build*> keep_distinct(const Build& reference, const std::vector<Build>& more, const fs::path& stage,
                                        Bundle& bundle) {
  std::error_code ec;
  std::map<std::string, std::string> seen = {{reference.outcome->record.output_sha256, "reference"}};
  std::vector<const Build*> kept = {&reference};
  for (const auto& b : more) {
    if (!b.outcome) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", first_line(b.outcome.error().message)}});
      continue;
    }
    auto [it, fresh] = seen.emplace(b.outcome->record.output_sha256, b.id);
    if (!fresh) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", "the same module as " + it->second}});
      for (const auto& p : {b.outcome->module_path, b.outcome->metadata_path}) fs::remove(p, ec);
      fs::remove_all(stage / "configs" / b.id, ec);
      continue;
    }
    kept.push_back(&b);
  }
  return kept;
}

Candidate candidate_of(const PrepareOptions& o, const Build& b, const OptionSet& rt, const std::string& id) {
  Candidate c;
  c.id = id;
  c.level = b.level;
  c.summary = b.summary;
  c.module = module_path(b.id, o.target);
  c.compile_flags = b.compile_flags;
  for (const auto& [exe, text] : b.configs) c.configs[exe] = "configs/" + b.id + "/" + tuning::config_file_name(exe);
  c.dispatches = b.dispatches;
  c.runtime_name = rt.name;
  c.runtime_flags = rt.flags;
  return c;
}

// Round 1: the reference under every runtime option set, each other module
// under the defaults.
void add_round_one_candidates(const PrepareOptions& o, const std::vector<const Build*>& kept, Bundle& bundle) {
  auto runtimes = runtime_option_sets(o.target.runtime_device);
  bundle.candidates.push_back(candidate_of(o, *kept[0], runtimes[0], "reference"));
  for (size_t i = 1; i < runtimes.size(); ++i) {
    Candidate c = candidate_of(o, *kept[0], runtimes[i], "rt-" + runtimes[i].name);
    c.level = "runtime";
    c.summary = "runtime: " + runtimes[i].name;
    bundle.candidates.push_back(c);
  }
  for (size_t i = 1; i < kept.size(); ++i) bundle.candidates.push_back(candidate_of(o, *kept[i], runtimes[0], kept[i]->id));
}

// Round 2: every module under each of round 1's best runtime option sets.
void add_round_two_candidates(const PrepareOptions& o, const std::vector<const Build*>& kept,
                              const std::vector<std::string>& runtime_names, Bundle& bundle) {
  auto runtimes = runtime_option_sets(o.target.runtime_device);
  for (const auto* b : kept) {
    for (const auto& name : runtime_names) {
      auto rt = std::find_if(runtimes.begin(), runtimes.end(), [&](const OptionSet& s) { return s.name == name; });
      if (rt == runtimes.end()) continue;
      std::string id = b->id == "reference" && name == "defaults" ? "reference" : b->id + "@" + name;
      Candidate c = candidate_of(o, *b, *rt, id);
      if (b->id == "reference" && name != "defaults") c.level = "runtime";
      c.summary = (b->id == "reference" ? std::string("the compiler's own choices") : b->summary) + "; runtime: " + name;
      bundle.candidates.push_back(c);
    }
  }
}

// Round 1's dispatch candidates that compiled, each distinct module once
// per executable (a configuration the compiler treats like another adds
// nothing to measure); the rest are listed as dropped.
void add_dispatch_candidates(std::vector<BenchBuild>& benches, const fs::path& stage, Bundle& bundle) {
  std::error_code ec;
  std::map<std::string, std::string> seen;  // digest + module sha -> id
  for (const auto& b : benches) {
    if (!b.module_sha) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", first_line(b.module_sha.error().message)}});
      continue;
    }
    auto [it, fresh] = seen.emplace(b.digest + *b.module_sha, b.id);
    if (!fresh) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", "the same module as " + it->second}});
      fs::remove(stage / "dispatches" / (b.id + ".vmfb"), ec);
      continue;
    }
    Candidate c;
    c.id = b.id;
    c.level = "dispatch";
    c.summary = b.summary;
    c.module = "dispatches/" + b.id + ".vmfb";
    c.executable = b.digest;
    for (const auto& [name, text] : b.configs) c.configs[name] = "configs/" + b.id + "/" + tuning::config_file_name(name);
    if (!b.configs.empty()) c.dispatches[b.name] = b.dispatch;
    bundle.candidates.push_back(std::move(c));
  }
}

Status write_bench_configs(const fs::path& stage, const std::vector<BenchBuild>& benches) {
  for (const auto& b : benches) {
    if (!b.module_sha || b.configs.empty()) continue;
    fs::path dir = stage / "configs" / b.id;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(Code::kFailedPrecondition, "cannot create " + dir.string() + ": " + ec.message());
    for (const auto& [name, text] : b.configs) {
      KILN_TRY_STATUS(util::write_file_atomic(dir / tuning::config_file_name(name), text));
    }
  }
  return {};
}

// Writes the bundle in its staging folder and moves it whole to its place.
Status publish_bundle(Bundle& bundle, util::TempDir& stage_dir, const fs::path& output) {
  std::error_code ec;
  fs::path stage = stage_dir.path();
  fs::remove_all(stage / "dump", ec);
  fs::remove_all(stage / "bench-src", ec);
  fs::remove_all(stage / "work", ec);
  fs::remove(stage / util::kOwnerFile, ec);  // the bundle is published whole
  bundle.dir = stage;
  KILN_TRY_STATUS(write_bundle(bundle));
  fs::remove(output, ec);  // an empty folder given as the destination
  fs::rename(stage, output, ec);
  if (ec) return fail(Code::kFailedPrecondition, fmt::format("cannot move the bundle to {}: {}", output.string(), ec.message()));
  stage_dir.keep();
  bundle.dir = output;
  return {};
}

// The whole-program candidates besides the reference: round 1 explores the
// program option sets, round 2 combines round 1's winners. Round 1's
// dispatch candidates are built on their own (explore_dispatches).
Result<std::vector<Build>> candidate_builds(const PrepareOptions& o, const std::optional<Bundle>& first,
                                            const std::optional<Results>& first_results, const fs::path& stage,
                                            Bundle& bundle, std::vector<std::string>& runtime_names, const Log& log) {
  if (first) {
    bundle.dispatches = first->dispatches;
    return combine(o, *first, *first_results, stage / "dump", bundle, runtime_names, log);
  }
  return explore_programs(o, stage / "dump");
}

// The reference: the compiler's own choices, with the configurations it
// made dumped for the tuner to start from, and (round 1) each executable's
// benchmark program.
Result<Build> compile_reference(const PrepareOptions& o, const fs::path& stage, bool benchmarks,
                                const toolchain::Toolchain& tools, compile::Executor& executor, const std::string& sha) {
  std::vector<Build> builds;
  builds.push_back({"reference", {"--iree-hal-dump-executable-configurations-to=" + (stage / "dump").string()}, {}, {},
                    "the compiler's own choices", "reference"});
  if (benchmarks) builds[0].compile_flags.push_back("--iree-hal-dump-executable-benchmarks-to=" + (stage / "bench-src").string());
  compile_all(builds, o, stage, tools, executor, sha, "");
  if (!builds[0].outcome) return tl::unexpected(builds[0].outcome.error().context("the reference module"));
  builds[0].compile_flags.clear();
  return std::move(builds[0]);
}

}  // namespace

Result<Bundle> prepare(const PrepareOptions& o, const toolchain::Toolchain& tools, compile::Executor& executor,
                       const Log& log) {
  std::error_code ec;
  KILN_TRY_STATUS(check_destination(o.output));
  std::string sha = KILN_TRY(util::sha256_file(o.model));
  const mlir::Function* fn = KILN_TRY(function_to_tune(o));
  std::optional<Bundle> first;
  std::optional<Results> first_results;
  if (!o.from.empty()) KILN_TRY_STATUS(read_round_one(o, sha, first, first_results));

  fs::path parent = fs::absolute(o.output).parent_path();
  fs::create_directories(parent, ec);
  util::reap_orphans(parent, ".kiln-staging-tune-");
  auto stage_dir = KILN_TRY(util::TempDir::create(parent, ".kiln-staging-tune-"));
  fs::path stage = stage_dir.path();
  KILN_TRY_STATUS(util::mark_owner(stage));
  for (const char* d : {"modules", "dump", "bench-src", "dispatches"}) fs::create_directories(stage / d, ec);
  Bundle bundle = new_bundle(o, tools, sha, *fn, first ? 2 : 1);

  log(fmt::format("compiling the reference module of {} for {}", o.model.string(), o.target.spec));
  Build reference = KILN_TRY(compile_reference(o, stage, !first, tools, executor, sha));
  std::vector<std::string> runtime_names;
  std::vector<Build> more = KILN_TRY(candidate_builds(o, first, first_results, stage, bundle, runtime_names, log));
  for (const auto& b : more) KILN_TRY_STATUS(write_configs(stage, b));
  compile_all(more, o, stage, tools, executor, sha, "whole-program candidates");
  std::vector<BenchBuild> benches;
  if (!first) benches = KILN_TRY(explore_dispatches(o, stage, bundle.dispatches, log));
  compile_benches(benches, o, stage, tools, executor);
  if (util::interrupted()) return fail(Code::kCancelled, "interrupted; the bundle was not written");

  auto kept = keep_distinct(reference, more, stage, bundle);
  if (first) add_round_two_candidates(o, kept, runtime_names, bundle);
  else add_round_one_candidates(o, kept, bundle);
  KILN_TRY_STATUS(write_bench_configs(stage, benches));
  add_dispatch_candidates(benches, stage, bundle);
  KILN_TRY_STATUS(publish_bundle(bundle, stage_dir, o.output));
  log(fmt::format("bundle {}: {} candidates ({} dropped)", o.output.string(), bundle.candidates.size(), bundle.dropped.size()));
  return bundle;
}

}  // namespace kiln::tune
