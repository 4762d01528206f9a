// `kiln tune prepare`: the candidate set of one program on one target.
#include <algorithm>
#include <atomic>
#include <map>
#include <set>

#include <fmt/format.h>

#include "kiln/compile/compile.h"
#include "kiln/tune/executable.h"
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
  for (const auto& [exe, text] : b.configs) KILN_TRY_STATUS(util::write_file_atomic(dir / (exe + ".mlir"), text));
  return {};
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
      b.configs[exe->name] = render(*exe, c.root, c.workgroup_size, c.pipeline_options);
      b.dispatches[exe->name] = c.summary;
      builds.push_back(std::move(b));
    }
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
        b.configs[exe->name] = render(*exe, c.root, c.workgroup_size, c.pipeline_options);
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

// Round 2: the winners of round 1, combined.
Result<std::vector<Build>> combine(const PrepareOptions& o, const Bundle& first, const Results& results,
                                   std::vector<std::string>& runtime_names, const Log& log) {
  const Measurement* ref = results.find("reference");
  if (!ref || ref->status != "ok") return fail(Code::kInvalidArgument, "the round-1 results have no measurement of the reference");
  // Dispatch candidates grouped by the whole-program options they were
  // compiled with: "" for the reference's dispatches, the reshaping option
  // set's flags (split-K) for dispatches that exist only under them.
  std::map<std::string, std::map<std::string, std::vector<Ranked>>> per_variant;
  std::vector<Ranked> programs, runtimes{{&first.candidates.front(), ref->latency_ms}};
  std::map<std::string, Ranked> variant_base;  // flags -> the untuned program under them
  for (const auto& c : first.candidates) {
    const Measurement* m = results.find(c.id);
    if (!m || m->status != "ok") continue;
    std::string flags = util::join(c.compile_flags, " ");
    if (c.level == "dispatch" && c.dispatches.size() == 1) {
      per_variant[flags][c.dispatches.begin()->first].push_back({&c, m->latency_ms});
    }
    if (c.level == "program") programs.push_back({&c, m->latency_ms});
    if (c.level == "runtime") runtimes.push_back({&c, m->latency_ms});
  }
  // A program option set that has dispatch candidates of its own reshapes the
  // program: the reference's configurations do not apply under it.
  programs.erase(std::remove_if(programs.begin(), programs.end(),
                                [&](const Ranked& r) {
                                  std::string flags = util::join(r.candidate->compile_flags, " ");
                                  if (!per_variant.count(flags)) return false;
                                  variant_base.emplace(flags, r);
                                  return true;
                                }),
                 programs.end());
  auto& per_exe = per_variant[""];
  auto by_time = [](const Ranked& a, const Ranked& b) { return a.ms < b.ms; };
  // A winner must beat the reference by more than the measurement's noise.
  double bar = ref->latency_ms * 0.98;
  std::vector<Build> builds;
  auto configs_of = [&](const Candidate& c, Build& b) -> Status {
    for (const auto& [exe, rel] : c.configs) b.configs[exe] = KILN_TRY(util::read_file(first.dir / rel));
    for (const auto& [exe, s] : c.dispatches) b.dispatches[exe] = s;
    return {};
  };
  Build best{"combined", {}, {}, {}, "", "combined"}, second{"combined-alt", {}, {}, {}, "", "combined"};
  for (auto& [exe, ranked] : per_exe) {
    std::sort(ranked.begin(), ranked.end(), by_time);
    if (ranked[0].ms >= bar) continue;
    KILN_TRY_STATUS(configs_of(*ranked[0].candidate, best));
    bool alt = ranked.size() > 1 && ranked[1].ms < bar;
    KILN_TRY_STATUS(configs_of(*ranked[alt ? 1 : 0].candidate, second));
  }
  auto summary_of = [](const Build& b) {
    std::vector<std::string> parts;
    for (const auto& [exe, s] : b.dispatches) parts.push_back(exe + ": " + s);
    return util::join(parts, "; ");
  };
  std::sort(programs.begin(), programs.end(), by_time);
  const Candidate* program = !programs.empty() && programs[0].ms < bar ? programs[0].candidate : nullptr;
  if (!best.configs.empty()) {
    best.summary = summary_of(best);
    second.summary = summary_of(second);
    builds.push_back(best);
    if (second.configs != best.configs) builds.push_back(second);
    if (program) {
      Build both = best;
      both.id = "combined+" + program->id;
      both.compile_flags = program->compile_flags;
      both.summary = program->summary + "; " + best.summary;
      builds.push_back(both);
    }
  }
  if (program) builds.push_back({program->id, program->compile_flags, {}, {}, program->summary, "program"});
  // Each reshaped program with its own dispatches' winners: those that beat
  // the untuned program under the same options.
  for (auto& [flags, exes] : per_variant) {
    auto base = variant_base.find(flags);
    if (flags.empty() || base == variant_base.end()) continue;
    const Candidate* prog = base->second.candidate;
    std::string name = util::starts_with(prog->id, "prog-") ? prog->id.substr(5) : prog->id;
    double vbar = base->second.ms * 0.98;
    Build vbest{"combined-" + name, prog->compile_flags, {}, {}, "", "combined"};
    Build valt{"combined-" + name + "-alt", prog->compile_flags, {}, {}, "", "combined"};
    for (auto& [exe, ranked] : exes) {
      std::sort(ranked.begin(), ranked.end(), by_time);
      if (ranked[0].ms >= vbar) continue;
      KILN_TRY_STATUS(configs_of(*ranked[0].candidate, vbest));
      bool alt = ranked.size() > 1 && ranked[1].ms < vbar;
      KILN_TRY_STATUS(configs_of(*ranked[alt ? 1 : 0].candidate, valt));
    }
    if (vbest.configs.empty()) continue;
    vbest.summary = name + "; " + summary_of(vbest);
    valt.summary = name + "; " + summary_of(valt);
    builds.push_back(vbest);
    if (valt.configs != vbest.configs) builds.push_back(valt);
  }
  std::sort(runtimes.begin(), runtimes.end(), by_time);
  runtime_names = {"defaults"};
  // Round 1's ranking of runtime options holds for its own calling
  // convention; under another (queued calls) the allocator's choices weigh
  // differently, so more of them are measured again.
  size_t keep = first.invocation == compile::invocation_name(o.invocation) ? 2 : 4;
  for (const auto& r : runtimes) {
    if (runtime_names.size() >= keep) break;
    if (r.candidate->runtime_name != "defaults") runtime_names.push_back(r.candidate->runtime_name);
  }
  if (first.invocation != compile::invocation_name(o.invocation)) {
    log(fmt::format("round 2 builds for {} calls; round 1 measured {} calls", compile::invocation_name(o.invocation),
                    first.invocation));
  }
  log(fmt::format("round 2: {} combined modules x {} runtime option sets ({})", builds.size() + 1, runtime_names.size(),
                  util::join(runtime_names, ", ")));
  return builds;
}

}  // namespace

Result<Bundle> prepare(const PrepareOptions& o, const toolchain::Toolchain& tools, compile::Executor& executor,
                       const Log& log) {
  std::error_code ec;
  if (fs::exists(o.output / "bundle.json", ec)) {
    return fail(Code::kInvalidArgument, fmt::format("{} already holds a tuning bundle; choose another folder or remove it",
                                                    o.output.string()));
  }
  if (fs::exists(o.output, ec) && !fs::is_empty(o.output, ec)) {
    return fail(Code::kInvalidArgument, fmt::format("{} exists and is not empty; give a new folder for the bundle", o.output.string()));
  }
  std::string sha = KILN_TRY(util::sha256_file(o.model));
  const auto* fn = [&]() -> const mlir::Function* {
    for (const auto& f : o.module->functions) {
      if (f.is_public) return &f;
    }
    return nullptr;
  }();
  if (!fn) return fail(Code::kInvalidArgument, o.model.string() + " has no public function to tune");
  for (const auto& v : fn->arguments) {
    if (v.type.has_dynamic_dims() || !v.type.ranked) {
      return fail(Code::kInvalidArgument, fmt::format("@{} takes {} with dynamic dimensions; tuning needs static shapes "
                                                      "(export the program for the batch size you deploy)",
                                                      fn->name, v.type.text()));
    }
  }

  // Round 2 reads round 1 before anything is made.
  std::optional<Bundle> first;
  std::optional<Results> first_results;
  if (!o.from.empty()) {
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
  }

  fs::path parent = fs::absolute(o.output).parent_path();
  fs::create_directories(parent, ec);
  util::reap_orphans(parent, ".kiln-staging-tune-");
  auto stage_dir = KILN_TRY(util::TempDir::create(parent, ".kiln-staging-tune-"));
  fs::path stage = stage_dir.path();
  KILN_TRY_STATUS(util::mark_owner(stage));
  fs::create_directories(stage / "modules", ec);
  fs::create_directories(stage / "dump", ec);

  Bundle bundle;
  bundle.dir = o.output;
  bundle.round = first ? 2 : 1;
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
  bundle.function = fn->name;
  bundle.seed = o.seed;
  bundle.created_at = util::utc_timestamp();

  // The reference: the compiler's own choices, with the configurations it
  // made dumped for the tuner to start from.
  log(fmt::format("compiling the reference module of {} for {}", o.model.string(), o.target.spec));
  std::vector<Build> builds;
  builds.push_back({"reference", {"--iree-hal-dump-executable-configurations-to=" + (stage / "dump").string()}, {}, {},
                    "the compiler's own choices", "reference"});
  compile_all(builds, o, stage, tools, executor, sha, [](const std::string&) {});
  if (!builds[0].outcome) return tl::unexpected(builds[0].outcome.error().context("the reference module"));
  std::string ref_sha = builds[0].outcome->record.output_sha256;
  builds[0].compile_flags.clear();

  std::vector<std::string> runtime_names;
  std::vector<Build> more = first ? KILN_TRY(combine(o, *first, *first_results, runtime_names, log))
                                  : KILN_TRY(explore(o, stage / "dump", bundle.dispatches, log));
  if (first) {
    bundle.dispatches = first->dispatches;
  } else {
    auto reshaped = KILN_TRY(explore_reshaped(o, stage, sha, tools, executor, bundle.dispatches, log));
    more.insert(more.end(), std::make_move_iterator(reshaped.begin()), std::make_move_iterator(reshaped.end()));
  }
  for (const auto& b : more) KILN_TRY_STATUS(write_configs(stage, b));
  compile_all(more, o, stage, tools, executor, sha, log);
  if (util::interrupted()) return fail(Code::kCancelled, "interrupted; the bundle was not written");

  // Keep each distinct module once: a candidate whose module is byte-identical
  // to an earlier one would only measure the same thing again.
  std::map<std::string, std::string> seen = {{ref_sha, "reference"}};
  std::vector<const Build*> kept = {&builds[0]};
  for (const auto& b : more) {
    if (!b.outcome) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", first_line(b.outcome.error().message)}});
      continue;
    }
    std::string out_sha = b.outcome->record.output_sha256;
    auto [it, fresh] = seen.emplace(out_sha, b.id);
    if (!fresh) {
      bundle.dropped.push_back({{"id", b.id}, {"summary", b.summary}, {"reason", "the same module as " + it->second}});
      for (const auto& p : {b.outcome->module_path, b.outcome->metadata_path}) fs::remove(p, ec);
      fs::remove_all(stage / "configs" / b.id, ec);
      continue;
    }
    kept.push_back(&b);
  }

  auto candidate_of = [&](const Build& b, const OptionSet& rt, const std::string& id) {
    Candidate c;
    c.id = id;
    c.level = b.level;
    c.summary = b.summary;
    c.module = module_path(b.id, o.target);
    c.compile_flags = b.compile_flags;
    for (const auto& [exe, text] : b.configs) c.configs[exe] = "configs/" + b.id + "/" + exe + ".mlir";
    c.dispatches = b.dispatches;
    c.runtime_name = rt.name;
    c.runtime_flags = rt.flags;
    return c;
  };
  auto runtimes = runtime_option_sets(o.target.runtime_device);
  if (!first) {
    bundle.candidates.push_back(candidate_of(builds[0], runtimes[0], "reference"));
    for (size_t i = 1; i < runtimes.size(); ++i) {
      Candidate c = candidate_of(builds[0], runtimes[i], "rt-" + runtimes[i].name);
      c.level = "runtime";
      c.summary = "runtime: " + runtimes[i].name;
      bundle.candidates.push_back(c);
    }
    for (size_t i = 1; i < kept.size(); ++i) bundle.candidates.push_back(candidate_of(*kept[i], runtimes[0], kept[i]->id));
  } else {
    for (const auto* b : kept) {
      for (const auto& name : runtime_names) {
        auto rt = std::find_if(runtimes.begin(), runtimes.end(), [&](const OptionSet& s) { return s.name == name; });
        if (rt == runtimes.end()) continue;
        std::string id = b->id == "reference" && name == "defaults" ? "reference" : b->id + "@" + name;
        Candidate c = candidate_of(*b, *rt, id);
        if (b->id == "reference" && name != "defaults") c.level = "runtime";
        c.summary = (b->id == "reference" ? std::string("the compiler's own choices") : b->summary) + "; runtime: " + name;
        bundle.candidates.push_back(c);
      }
    }
  }

  fs::remove_all(stage / "dump", ec);
  fs::remove(stage / util::kOwnerFile, ec);  // the bundle is published whole
  bundle.dir = stage;
  KILN_TRY_STATUS(write_bundle(bundle));
  fs::remove(o.output, ec);  // an empty folder given as the destination
  fs::rename(stage, o.output, ec);
  if (ec) return fail(Code::kFailedPrecondition, fmt::format("cannot move the bundle to {}: {}", o.output.string(), ec.message()));
  stage_dir.keep();
  bundle.dir = o.output;
  log(fmt::format("bundle {}: {} candidates ({} dropped)", o.output.string(), bundle.candidates.size(), bundle.dropped.size()));
  return bundle;
}

}  // namespace kiln::tune
