// `kiln tune prepare`: the candidate set of one program on one target.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include <fmt/format.h>

#include "kiln/compile/compile.h"
#include "kiln/tune/executable.h"
#include "kiln/tune/kernel.h"
#include "kiln/tune/space.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"
#include "kiln/util/orphans.h"
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

// Compiles every build in the pool; fills in their outcomes.
void compile_all(std::vector<Build>& builds, const PrepareOptions& o, const fs::path& stage,
                 const toolchain::Toolchain& tools, compile::Executor& executor, const std::string& sha, const Log& log) {
  std::atomic<size_t> done{0};
  auto work = [&](size_t i) {
    Build& b = builds[i];
    compile::Options options;
    options.precision = o.precision;
    options.invocation = o.invocation;
    options.use_tuning = false;
    options.timeout = o.compile_timeout;
    options.extra_flags = b.compile_flags;
    if (!b.configs.empty()) options.executable_configs = stage / "configs" / b.id;
    b.outcome = compile::run({o.model, b.id, o.target, stage / "modules", nullptr, sha}, options, *o.module, tools, executor);
    size_t n = ++done;
    if (n % 10 == 0 || n == builds.size()) log(fmt::format("compiled {}/{} candidates", n, builds.size()));
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

// kiln's own kernels for a dispatch, when it has any (kernel.h). A kernel
// runs in the compiler's launch, so the dispatch is compiled with the
// configuration the kernel asks for, or else with the compiler's own when
// its block size fits, or else the first tile candidate whose block size
// does. What was added, or why nothing was, goes into the dispatch's entry.
void add_kernels(const Executable& exe, const std::string& arch, const std::vector<DispatchCandidate>& candidates,
                 json& entry, std::vector<Build>& builds) {
  auto kernels = kernels_for(exe, arch);
  if (!kernels) {
    if (exe.op_kind.find("matmul") != std::string::npos) entry["kernels"] = "none: " + kernels.error().message;
    return;
  }
  entry["kernels"] = json::array();
  for (auto& kernel : *kernels) {
    Build b{exe.name + "-" + kernel.id, {}, {}, {}, exe.name + ": " + kernel.summary, "dispatch"};
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
    b.dispatches[exe.name] = kernel.summary;
    entry["kernels"].push_back(kernel.summary);
    builds.push_back(std::move(b));
  }
}

// Round 1: each level on its own.
Result<std::vector<Build>> explore(const PrepareOptions& o, const fs::path& dump, json& dispatches, const Log& log) {
  std::vector<Build> builds;
  for (const auto& set : program_option_sets(o.target.backend)) {
    if (set.flags.empty()) continue;
    builds.push_back({"prog-" + set.name, set.flags, {}, {}, set.name, "program"});
  }
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dump, ec)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    auto text = KILN_TRY(util::read_file(file));
    auto exe = parse_executable(text);
    if (!exe) continue;
    auto candidates = dispatch_candidates(*exe, o.per_dispatch);
    dispatches.push_back({{"executable", exe->name}, {"function", exe->function}, {"op", exe->op_kind},
                          {"bounds", exe->bounds}, {"pipeline", exe->pipeline}, {"family", family_name(exe->family)},
                          {"configuration", describe(exe->root)}, {"candidates", candidates.size()}});
    for (size_t k = 0; k < candidates.size(); ++k) {
      const auto& c = candidates[k];
      Build b{fmt::format("{}-{:02}", exe->name, k), {}, {}, {}, exe->name + ": " + c.summary, "dispatch"};
      b.configs[exe->name] = render(*exe, c.root, c.workgroup_size, c.pipeline_options, c.pipeline);
      b.dispatches[exe->name] = c.summary;
      builds.push_back(std::move(b));
    }
    if (o.target.backend == target::Backend::kCuda) add_kernels(*exe, o.target.arch, candidates, dispatches.back(), builds);
  }
  log(fmt::format("{} dispatches, {} tunable; {} candidate modules", dispatches.size(),
                  std::count_if(dispatches.begin(), dispatches.end(), [](const json& d) { return d["candidates"] != 0; }),
                  builds.size() + 1));
  return builds;
}

// Round 1, for programs with little parallel work per contraction: the
// reshaping option sets (split-K), each compiled once with its own dump, and
// its contractions' configurations, compiled under the same options.
Result<std::vector<Build>> explore_reshaped(const PrepareOptions& o, const fs::path& stage, const std::string& sha,
                                            const toolchain::Toolchain& tools, compile::Executor& executor,
                                            json& dispatches, const Log& log) {
  std::vector<Executable> exes;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(stage / "dump", ec)) {
    auto text = KILN_TRY(util::read_file(e.path()));
    if (auto exe = parse_executable(text)) exes.push_back(std::move(*exe));
  }
  std::vector<Build> builds;
  for (const auto& set : reshaping_option_sets(o.target.backend, exes)) {
    fs::path dump = stage / ("dump-" + set.name);
    fs::create_directories(dump, ec);
    auto flags = set.flags;
    flags.push_back("--iree-hal-dump-executable-configurations-to=" + dump.string());
    std::vector<Build> probe{{"probe-" + set.name, flags, {}, {}, set.name, "program"}};
    compile_all(probe, o, stage, tools, executor, sha, [](const std::string&) {});
    if (!probe[0].outcome) {
      log(fmt::format("{}: not explored ({})", set.name, first_line(probe[0].outcome.error().message)));
      fs::remove_all(dump, ec);
      continue;
    }
    for (const auto& p : {probe[0].outcome->module_path, probe[0].outcome->metadata_path}) fs::remove(p, ec);
    builds.push_back({"prog-" + set.name, set.flags, {}, {}, set.name + " (its dispatches untuned)", "program"});
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dump, ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    size_t added = 0;
    for (const auto& file : files) {
      auto text = KILN_TRY(util::read_file(file));
      auto exe = parse_executable(text);
      if (!exe || exe->op_kind.find("matmul") == std::string::npos) continue;
      auto candidates = dispatch_candidates(*exe, std::max<size_t>(4, o.per_dispatch / 2));
      dispatches.push_back({{"executable", exe->name}, {"function", exe->function}, {"op", exe->op_kind},
                            {"bounds", exe->bounds}, {"pipeline", exe->pipeline}, {"family", family_name(exe->family)},
                            {"configuration", describe(exe->root)}, {"candidates", candidates.size()},
                            {"program_options", set.name}});
      for (size_t k = 0; k < candidates.size(); ++k) {
        const auto& c = candidates[k];
        Build b{fmt::format("{}-{}-{:02}", set.name, exe->name, k), set.flags, {}, {},
                set.name + "; " + exe->name + ": " + c.summary, "dispatch"};
        b.configs[exe->name] = render(*exe, c.root, c.workgroup_size, c.pipeline_options, c.pipeline);
        b.dispatches[exe->name] = c.summary;
        builds.push_back(std::move(b));
        ++added;
      }
    }
    fs::remove_all(dump, ec);
    log(fmt::format("{}: {} candidate modules for its contractions", set.name, added));
  }
  return builds;
}

struct Ranked {
  const Candidate* candidate;
  double ms;
};

bool faster(const Ranked& a, const Ranked& b) { return a.ms < b.ms; }

// Round 1's measured candidates, by level. Dispatch candidates are grouped by
// the whole-program options they were compiled with: "" for the reference's
// dispatches, the reshaping option set's flags (split-K) for dispatches that
// exist only under them.
struct RoundOne {
  std::map<std::string, std::map<std::string, std::vector<Ranked>>> per_variant;
  std::vector<Ranked> programs;
  std::vector<Ranked> runtimes;
  std::map<std::string, Ranked> variant_base;  // flags -> the untuned program under them
};

RoundOne rank_round_one(const Bundle& first, const Results& results, double reference_ms) {
  RoundOne r;
  r.runtimes.push_back({&first.candidates.front(), reference_ms});
  for (const auto& c : first.candidates) {
    const Measurement* m = results.find(c.id);
    if (!m || m->status != "ok") continue;
    std::string flags = util::join(c.compile_flags, " ");
    if (c.level == "dispatch" && c.dispatches.size() == 1) {
      r.per_variant[flags][c.dispatches.begin()->first].push_back({&c, m->latency_ms});
    }
    if (c.level == "program") r.programs.push_back({&c, m->latency_ms});
    if (c.level == "runtime") r.runtimes.push_back({&c, m->latency_ms});
  }
  // A program option set that has dispatch candidates of its own reshapes the
  // program: the reference's configurations do not apply under it.
  r.programs.erase(std::remove_if(r.programs.begin(), r.programs.end(),
                                  [&](const Ranked& p) {
                                    std::string flags = util::join(p.candidate->compile_flags, " ");
                                    if (!r.per_variant.count(flags)) return false;
                                    r.variant_base.emplace(flags, p);
                                    return true;
                                  }),
                   r.programs.end());
  std::sort(r.programs.begin(), r.programs.end(), faster);
  std::sort(r.runtimes.begin(), r.runtimes.end(), faster);
  return r;
}

Status add_configs(const Bundle& first, const Candidate& c, Build& b) {
  for (const auto& [exe, rel] : c.configs) b.configs[exe] = KILN_TRY(util::read_file(first.dir / rel));
  for (const auto& [exe, s] : c.dispatches) b.dispatches[exe] = s;
  return {};
}

// Round 1 times one dispatch's change inside an otherwise untuned program,
// too coarse to rank tiles a few percent apart. So each dispatch keeps its
// fastest candidates that beat `bar` and come within 8% of its best, up to
// three, and round 2 measures their combinations.
std::vector<const Candidate*> finalists(std::vector<Ranked>& ranked, double bar) {
  std::sort(ranked.begin(), ranked.end(), faster);
  std::vector<const Candidate*> out;
  for (const auto& r : ranked) {
    if (out.size() >= 3 || r.ms >= bar || r.ms > ranked.front().ms * 1.08) break;
    out.push_back(r.candidate);
  }
  return out;
}

// One build per combination of the executables' finalists, named `id`,
// `id-2`, `id-3`, ...; none when no executable has a candidate that beats `bar`.
Result<std::vector<Build>> combined_builds(const Bundle& first, std::map<std::string, std::vector<Ranked>>& per_exe,
                                           double bar, const std::string& id, const std::vector<std::string>& flags) {
  std::vector<std::vector<const Candidate*>> choices;
  for (auto& [exe, ranked] : per_exe) {
    auto kept = finalists(ranked, bar);
    if (!kept.empty()) choices.push_back(std::move(kept));
  }
  std::vector<Build> builds;
  if (choices.empty()) return builds;
  std::vector<size_t> counts;
  for (const auto& c : choices) counts.push_back(c.size());
  for (const auto& combo : combinations(counts)) {
    Build b{builds.empty() ? id : fmt::format("{}-{}", id, builds.size() + 1), flags, {}, {}, "", "combined"};
    for (size_t i = 0; i < combo.size(); ++i) KILN_TRY_STATUS(add_configs(first, *choices[i][combo[i]], b));
    builds.push_back(std::move(b));
  }
  return builds;
}

std::string summary_of(const Build& b) {
  std::vector<std::string> parts;
  for (const auto& [exe, s] : b.dispatches) parts.push_back(exe + ": " + s);
  return util::join(parts, "; ");
}

// Each reshaped program with its own dispatches' winners: those that beat the
// untuned program under the same options.
Status add_reshaped_winners(const Bundle& first, RoundOne& r, std::vector<Build>& builds) {
  for (auto& [flags, exes] : r.per_variant) {
    auto base = r.variant_base.find(flags);
    if (flags.empty() || base == r.variant_base.end()) continue;
    const Candidate* prog = base->second.candidate;
    std::string name = util::starts_with(prog->id, "prog-") ? prog->id.substr(5) : prog->id;
    for (auto& b : KILN_TRY(combined_builds(first, exes, base->second.ms * 0.98, "combined-" + name, prog->compile_flags))) {
      b.summary = name + "; " + summary_of(b);
      builds.push_back(std::move(b));
    }
  }
  return {};
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

// Round 2: the winners of round 1, combined.
Result<std::vector<Build>> combine(const PrepareOptions& o, const Bundle& first, const Results& results,
                                   std::vector<std::string>& runtime_names, const Log& log) {
  const Measurement* ref = results.find("reference");
  if (!ref || ref->status != "ok") return fail(Code::kInvalidArgument, "the round-1 results have no measurement of the reference");
  RoundOne r = rank_round_one(first, results, ref->latency_ms);
  // A winner must beat the reference by more than the measurement's noise.
  double bar = ref->latency_ms * 0.98;
  std::vector<Build> builds;
  std::vector<Build> combined = KILN_TRY(combined_builds(first, r.per_variant[""], bar, "combined", {}));
  for (auto& b : combined) b.summary = summary_of(b);
  builds = combined;
  const Candidate* program = !r.programs.empty() && r.programs[0].ms < bar ? r.programs[0].candidate : nullptr;
  if (!combined.empty()) {
    const Build& best = combined.front();
    if (program) {
      Build both = best;
      both.id = "combined+" + program->id;
      both.compile_flags = program->compile_flags;
      both.summary = program->summary + "; " + best.summary;
      builds.push_back(both);
    }
  }
  if (program) builds.push_back({program->id, program->compile_flags, {}, {}, program->summary, "program"});
  KILN_TRY_STATUS(add_reshaped_winners(first, r, builds));
  runtime_names = runtime_choices(o, first, r.runtimes);
  if (first.invocation != compile::invocation_name(o.invocation)) {
    log(fmt::format("round 2 builds for {} calls; round 1 measured {} calls", compile::invocation_name(o.invocation),
                    first.invocation));
  }
  log(fmt::format("round 2: {} combined modules x {} runtime option sets ({})", builds.size() + 1, runtime_names.size(),
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

// Writes the bundle in its staging folder and moves it whole to its place.
Status publish_bundle(Bundle& bundle, util::TempDir& stage_dir, const fs::path& output) {
  std::error_code ec;
  fs::path stage = stage_dir.path();
  fs::remove_all(stage / "dump", ec);
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

// The candidates besides the reference: round 1 explores each dispatch and
// the reshaping program options, round 2 combines round 1's winners.
Result<std::vector<Build>> candidate_builds(const PrepareOptions& o, const std::optional<Bundle>& first,
                                            const std::optional<Results>& first_results, const fs::path& stage,
                                            const std::string& sha, const toolchain::Toolchain& tools,
                                            compile::Executor& executor, Bundle& bundle,
                                            std::vector<std::string>& runtime_names, const Log& log) {
  if (first) {
    bundle.dispatches = first->dispatches;
    return combine(o, *first, *first_results, runtime_names, log);
  }
  std::vector<Build> more = KILN_TRY(explore(o, stage / "dump", bundle.dispatches, log));
  auto reshaped = KILN_TRY(explore_reshaped(o, stage, sha, tools, executor, bundle.dispatches, log));
  more.insert(more.end(), std::make_move_iterator(reshaped.begin()), std::make_move_iterator(reshaped.end()));
  return more;
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
  fs::create_directories(stage / "modules", ec);
  fs::create_directories(stage / "dump", ec);
  Bundle bundle = new_bundle(o, tools, sha, *fn, first ? 2 : 1);

  // The reference: the compiler's own choices, with the configurations it
  // made dumped for the tuner to start from.
  log(fmt::format("compiling the reference module of {} for {}", o.model.string(), o.target.spec));
  std::vector<Build> builds;
  builds.push_back({"reference", {"--iree-hal-dump-executable-configurations-to=" + (stage / "dump").string()}, {}, {},
                    "the compiler's own choices", "reference"});
  compile_all(builds, o, stage, tools, executor, sha, [](const std::string&) {});
  if (!builds[0].outcome) return tl::unexpected(builds[0].outcome.error().context("the reference module"));
  builds[0].compile_flags.clear();

  std::vector<std::string> runtime_names;
  std::vector<Build> more =
      KILN_TRY(candidate_builds(o, first, first_results, stage, sha, tools, executor, bundle, runtime_names, log));
  for (const auto& b : more) KILN_TRY_STATUS(write_configs(stage, b));
  compile_all(more, o, stage, tools, executor, sha, log);
  if (util::interrupted()) return fail(Code::kCancelled, "interrupted; the bundle was not written");

  auto kept = keep_distinct(builds[0], more, stage, bundle);
  if (first) add_round_two_candidates(o, kept, runtime_names, bundle);
  else add_round_one_candidates(o, kept, bundle);
  KILN_TRY_STATUS(publish_bundle(bundle, stage_dir, o.output));
  log(fmt::format("bundle {}: {} candidates ({} dropped)", o.output.string(), bundle.candidates.size(), bundle.dropped.size()));
  return bundle;
}

}  // namespace kiln::tune
