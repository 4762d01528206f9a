#include "kiln/compile/compile.h"

#include <ctime>
#include <map>

#include <fmt/format.h>

#include "kiln/compile/diagnostics.h"
#include "kiln/compile/fallback.h"
#include "kiln/mlir/dot_algorithm.h"
#include "kiln/mlir/inspect.h"
#include "kiln/mlir/jax_serialized.h"
#include "kiln/util/subprocess.h"
#include "kiln/util/fault.h"
#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/orphans.h"
#include "kiln/util/strings.h"
#include "kiln/util/time.h"
#include "kiln/version.h"

namespace kiln::compile {
namespace {

using nlohmann::json;

std::string shell_quote(const std::string& arg) {
  if (!arg.empty() && arg.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,+@%") ==
                          std::string::npos) {
    return arg;
  }
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}


json value_json(const mlir::Value& v) {
  json dims = json::array();
  for (int64_t d : v.type.dims) dims.push_back(d == mlir::kDynamic ? json(nullptr) : json(d));
  json out = {{"type", v.type.text()}};
  if (!v.name.empty()) out["name"] = v.name;
  if (v.type.is_tensor) {
    out["element_type"] = v.type.element;
    out["shape"] = v.type.ranked ? dims : json(nullptr);
    out["dynamic"] = v.type.has_dynamic_dims();
  }
  return out;
}

// Saves the compiler's whole output next to the unit's outputs (a failed
// unit's only file there) and describes the failure.
Error compile_failure(const util::ProcessResult& result, const Unit& unit, const Options& options, const std::string& base,
                      const std::vector<std::string>& argv, const std::vector<std::string>& flags) {
  fs::path log = unit.output_dir / (base + ".log");
  std::vector<std::string> quoted;
  for (const auto& a : argv) quoted.push_back(shell_quote(a));
  std::string text = fmt::format("# kiln compile log 1\ninput: {}\ntarget: {}\ncommand: {}\noutcome: {}\nseconds: {:.2f}\n"
                                 "\n--- stderr ---\n{}\n--- stdout ---\n{}\n",
                                 unit.input.string(), unit.target.spec, util::join(quoted, " "),
                                 util::describe_outcome(result), result.wall_seconds, result.err, result.out);
  // Not on a full disk: the message says so, and a partial log would be a
  // file left behind by a failed unit.
  bool full = result.err.find("No space left on device") != std::string::npos;
  bool saved = !full && bool(util::write_file_atomic(fs::absolute(log), text));
  FailureContext context{fmt::format("compiling {} for {}", unit.input.string(), unit.target.spec),
                         unit.target,
                         flags,
                         unit.input.string(),
                         fs::absolute(unit.input).string(),
                         saved ? log.string() : "",
                         unit.output_dir.string(),
                         options.timeout.count() / 1000.0};
  return describe_failure(result, context);
}

}  // namespace

const std::vector<std::string>& precision_policies() {
  static const std::vector<std::string> policies = {"highest", "f16-inputs", "bf16-inputs"};
  return policies;
}

std::string precision_name(const std::string& precision) { return precision.empty() ? "highest" : precision; }

const std::vector<std::string>& invocation_models() {
  static const std::vector<std::string> models = {"sync", "async"};
  return models;
}

std::string invocation_name(const std::string& invocation) { return invocation.empty() ? "sync" : invocation; }

namespace {

// A flag a remote client may pass: an option of the compiler's optimization
// and code-generation phases (never a HAL option: those name files and
// tools), whose name does not say it reads or writes a file or runs a
// program, and whose value is not a path.
bool safe_for_remote(const std::string& flag) {
  static const char* const kPhases[] = {"--iree-opt-",     "--iree-global-opt-", "--iree-dispatch-creation-",
                                        "--iree-codegen-", "--iree-llvmgpu-",    "--iree-llvmcpu-",
                                        "--iree-stream-",  "--iree-flow-",       "--iree-vm-",
                                        "--iree-input-"};
  bool phase = false;
  for (const char* prefix : kPhases) phase = phase || util::starts_with(flag, prefix);
  if (!phase) return false;
  std::string name = flag.substr(0, flag.find('='));
  std::string value = flag.find('=') == std::string::npos ? "" : flag.substr(flag.find('=') + 1);
  static const char* const kFileWords[] = {"dump", "path", "file", "-to", "substitute", "output", "search", "spec",
                                           "object", "source", "listing", "link", "reproducer", "trace", "dir",
                                           "parameter", "archive", "plugin", "save", "load", "import", "export",
                                           "library", "preprocess", "with", "tool", "command", "exec"};
  for (const char* word : kFileWords) {
    if (name.find(word) != std::string::npos) return false;
  }
  return value.find('/') == std::string::npos && !util::starts_with(value, "@") && !util::starts_with(value, "~");
}

}  // namespace

Status validate(const Options& options, Origin origin) {
  const auto& policies = precision_policies();
  if (!options.precision.empty() && std::find(policies.begin(), policies.end(), options.precision) == policies.end()) {
    return fail(Code::kInvalidArgument, "precision '" + options.precision + "' is not one of " + util::join(policies, ", "));
  }
  const auto& models = invocation_models();
  if (!options.invocation.empty() && std::find(models.begin(), models.end(), options.invocation) == models.end()) {
    return fail(Code::kInvalidArgument, "invocation '" + options.invocation + "' is not one of " + util::join(models, ", "));
  }
  const auto& level = options.opt_level;
  if (!level.empty() && !(level.size() == 2 && level[0] == 'O' && level[1] >= '0' && level[1] <= '3')) {
    return fail(Code::kInvalidArgument,
                "optimization level '" + options.opt_level + "' is not one of O0, O1, O2, O3");
  }
  for (const auto& flag : options.extra_flags) {
    if (!util::starts_with(flag, "-")) {
      return fail(Code::kInvalidArgument, "extra compiler flag '" + flag + "' does not start with '-'");
    }
    if (flag == "-o" || util::starts_with(flag, "--output-format") || util::starts_with(flag, "-o=")) {
      return fail(Code::kInvalidArgument, "extra compiler flag '" + flag + "' would change where or how kiln writes "
                                          "the module; kiln sets the output itself");
    }
    if (origin == Origin::kRemoteClient && !safe_for_remote(flag)) {
      return fail(Code::kInvalidArgument,
                  "extra compiler flag '" + flag + "' is not accepted by the service: it may pass the compiler's "
                  "optimization and code-generation options (--iree-opt-*, --iree-codegen-*, --iree-llvmgpu-*, ...) "
                  "that read or write no file and run no program; compile locally with 'kiln compile' to use it");
    }
  }
  return {};
}

std::vector<std::string> option_flags(const Options& options) {
  std::vector<std::string> flags;
  if (!options.opt_level.empty()) flags.push_back("--iree-opt-level=" + options.opt_level);
  if (options.data_tiling) flags.push_back(std::string("--iree-opt-data-tiling=") + (*options.data_tiling ? "true" : "false"));
  // Narrow contraction inputs with f32 accumulation: the class of XLA's
  // default (TF32) matmuls on NVIDIA GPUs.
  // The operations flag defaults to none in IREE 3.13: without it the type
  // flag changes nothing.
  if (options.precision == "f16-inputs" || options.precision == "bf16-inputs") {
    flags.push_back(std::string("--iree-global-opt-demote-contraction-inputs-type=") +
                    (options.precision == "f16-inputs" ? "f16" : "bf16"));
    flags.push_back("--iree-global-opt-demote-contraction-inputs-operations=all");
  }
  if (options.invocation == "async") flags.push_back("--iree-execution-model=async-external");
  if (options.keep_f64) flags.push_back("--iree-input-demote-f64-to-f32=false");
  flags.insert(flags.end(), options.extra_flags.begin(), options.extra_flags.end());
  return flags;
}
std::vector<std::string> tuning_options(const Options& options) {
  Options rest = options;
  rest.precision.clear();
  rest.invocation.clear();
  return option_flags(rest);
}

std::string default_name(const fs::path& input) {
  std::string name = input.filename().string();
  static const std::vector<std::string> suffixes = {".mlir", ".mlirbc", ".bc", ".vhlo", ".stablehlo", ".txt", ".jaxexp"};
  bool stripped = true;
  while (stripped) {
    stripped = false;
    for (const auto& s : suffixes) {
      if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        name.resize(name.size() - s.size());
        stripped = true;
      }
    }
  }
  return name;
}

json functions_json(const mlir::ModuleInfo& module) {
  json out = json::array();
  for (const auto& f : module.functions) {
    json args = json::array(), results = json::array();
    for (const auto& a : f.arguments) args.push_back(value_json(a));
    for (const auto& r : f.results) results.push_back(value_json(r));
    out.push_back({{"name", f.name}, {"visibility", f.is_public ? "public" : "private"},
                   {"arguments", args}, {"results", results}});
  }
  return out;
}

namespace {

// Renames the staged module and then its metadata into the output folder.
Result<Outcome> publish(const fs::path& staged_module, const fs::path& final_module, const fs::path& final_metadata,
                        nlohmann::json metadata, const std::string& context) {
  fs::path staged_metadata = staged_module.parent_path() / final_metadata.filename();
  auto written = util::write_file_atomic(staged_metadata, metadata.dump(2) + "\n");
  if (!written) return tl::unexpected(written.error().context(context));
  // The module first, then its record: a metadata file always describes a
  // module that is already complete. The record of an earlier compile goes
  // before the new module arrives, so a kill between the renames leaves a
  // module without a record, never one beside another module's record.
  std::error_code stale_ec;
  if (fs::remove(final_metadata, stale_ec); stale_ec) {
    return fail(Code::kInternal, fmt::format("{}: cannot replace {}: {}", context, final_metadata.string(), stale_ec.message()));
  }
  auto published = util::publish_file(staged_module, final_module);
  if (published) util::pause_at("compile-between-renames");
  if (published) published = util::publish_file(staged_metadata, final_metadata);
  if (!published) {
    std::error_code ec;
    fs::remove(final_module, ec);
    return tl::unexpected(published.error().context(context));
  }
  auto record = record_from_json(metadata, final_metadata.string());
  if (!record) return tl::unexpected(record.error().context(context));
  return Outcome{final_module, final_metadata, std::move(*record)};
}

// The executable configurations (<executable>.mlir) and kernel objects
// (<executable>.ptx) in a folder, by name (see tuning::config_file_name).
Result<std::vector<std::pair<std::string, std::string>>> read_configs(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> texts;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::string name = tuning::config_name(it->path().filename().string());
    if (name.empty()) continue;
    auto text = util::read_file(it->path());
    if (!text) return tl::unexpected(text.error().context("reading the executable configurations"));
    texts.emplace_back(std::move(name), std::move(*text));
  }
  if (ec) return fail(Code::kNotFound, fmt::format("cannot read the executable configurations in {}: {}", dir.string(), ec.message()));
  if (texts.empty()) return fail(Code::kNotFound, "no executable configurations in " + dir.string());
  std::sort(texts.begin(), texts.end());
  return texts;
}

std::string explain_miss(cache::Store& store, const cache::KeyParts& parts) {
  auto e = store.explain(parts);
  if (!e.found_nearest) return "cache miss: the cache is empty";
  if (e.differing.empty()) return "cache miss: an entry with the same key parts was dropped (corrupt or evicted)";
  std::string out = "cache miss: the nearest entry differs in " + util::join(e.differing, ", ");
  for (const auto& part : e.differing) {
    if (part == "flags") {
      std::vector<std::string> only_here, only_there;
      for (const auto& f : parts.flags) {
        if (std::find(e.nearest.flags.begin(), e.nearest.flags.end(), f) == e.nearest.flags.end()) only_here.push_back(f);
      }
      for (const auto& f : e.nearest.flags) {
        if (std::find(parts.flags.begin(), parts.flags.end(), f) == parts.flags.end()) only_there.push_back(f);
      }
      out += fmt::format("\n  flags only now: {}\n  flags only in the entry: {}", only_here.empty() ? "-" : util::join(only_here, " "),
                         only_there.empty() ? "-" : util::join(only_there, " "));
    } else if (part == "input") {
      out += fmt::format("\n  input sha256 now {}, entry {}", parts.input_sha256.substr(0, 16), e.nearest.input_sha256.substr(0, 16));
    } else if (part == "target") {
      out += fmt::format("\n  target now {}, entry {}", parts.target, e.nearest.target);
    } else if (part == "tuning") {
      out += fmt::format("\n  tuning now {}, entry {}", parts.tuning.empty() ? "none" : parts.tuning.substr(0, 12),
                         e.nearest.tuning.empty() ? "none" : e.nearest.tuning.substr(0, 12));
    } else if (part == "iree") {
      out += fmt::format("\n  IREE now {} ({}), entry {} ({})", parts.iree_build, parts.iree_revision.substr(0, 12),
                         e.nearest.iree_build, e.nearest.iree_revision.substr(0, 12));
    }
  }
  return out;
}

// What is compiled: the input itself, or for a shape-polymorphic JAX export
// in MLIR text a rewritten copy in the staging folder (broadcasts annotated,
// and with a binding, @main specialized). `key_tags` join the cache key.
struct Prepared {
  fs::path input;
  json jax;  // the metadata's "jax" section; null when nothing was done
  std::vector<std::string> key_tags;
  std::optional<mlir::ModuleInfo> info;  // the specialized signatures
  size_t dot_algorithms = 0;  // dot_general algorithms written as plain dots
  size_t dots_f32_accumulation = 0;  // 16-bit dots made to sum in f32
};

// A serialized Exported with symbolic dimensions: its module printed as
// StableHLO text (the platform index bound), then rewritten as the MLIR
// text of a shape-polymorphic export is: broadcasts annotated and, with a
// binding, @main specialized.
Status prepare_exported_polymorphic(const Unit& unit, const fs::path& staging, const toolchain::Toolchain& tools,
                                    const fs::path& module, const mlir::JaxExported& exported, int64_t index,
                                    Prepared& p) {
  std::string text = KILN_TRY(toolchain::print_vhlo_as_stablehlo(tools, module)
                                  .map_error([](Error e) { return e.context("the module inside the Exported"); }));
  if (exported.platforms.size() > 1) text = KILN_TRY(mlir::bind_platform_index(text, index));
  size_t annotated = 0;
  std::string out = mlir::annotate_dynamic_broadcasts(text, &annotated);
  text.clear();
  if (!unit.binding.empty()) out = KILN_TRY(mlir::bind_dims(out, unit.binding));
  p.input = staging / (unit.name + ".stablehlo.mlir");
  KILN_TRY_STATUS(util::write_file_atomic(p.input, out));
  p.jax["shape_polymorphic"] = true;
  p.jax["symbolic_dims"] = exported.symbolic_dims();
  p.jax["broadcasts_annotated"] = annotated;
  p.key_tags.push_back("--kiln-jax-rewrite=1");
  for (const auto& [name, value] : unit.binding) p.key_tags.push_back(fmt::format("--kiln-bind={}={}", name, value));
  auto info = mlir::inspect_text(out);
  if (info) {
    info->format = "jax-exported";
    p.info = std::move(*info);
  }
  return {};
}

// A serialized jax.export Exported: the module inside is compiled, for the
// platform the target runs; a multi-platform export gets its platform index
// bound (in the VHLO text iree-opt prints).
Result<Prepared> prepare_exported(const Unit& unit, const fs::path& staging, const toolchain::Toolchain& tools) {
  Prepared p{unit.input, nullptr, {}, std::nullopt};
  auto bytes = KILN_TRY(util::read_file(unit.input));
  auto exported = KILN_TRY(mlir::read_jax_exported(bytes));
  std::string platform = mlir::jax_platform_of(target::backend_name(unit.target.backend));
  auto chosen = std::find(exported.platforms.begin(), exported.platforms.end(), platform);
  if (platform.empty() || chosen == exported.platforms.end()) {
    return fail(Code::kInvalidArgument,
                fmt::format("the export was made for {} and not for {}: export it with platforms=(..., \"{}\") or "
                            "compile for a target of one of its platforms",
                            util::join(exported.platforms, ", "), unit.target.spec,
                            platform.empty() ? std::string(target::backend_name(unit.target.backend)) : platform));
  }
  if (exported.symbolic_dims().empty() && !unit.binding.empty()) {
    return fail(Code::kInvalidArgument, "cannot bind " + unit.binding.front().first +
                                            ": the export has no symbolic dimensions");
  }
  int64_t index = chosen - exported.platforms.begin();
  p.jax = {{"serialized", true},
           {"function", exported.function_name},
           {"platforms", exported.platforms},
           {"platform", platform},
           {"serialization_version", exported.serialization_version},
           {"calling_convention_version", exported.calling_convention_version}};
  p.key_tags.push_back("--kiln-jax-platform=" + platform);
  fs::path module = staging / (unit.name + ".mlirbc");
  KILN_TRY_STATUS(util::write_file_atomic(module, exported.module));
  p.input = module;
  if (!exported.symbolic_dims().empty()) {
    KILN_TRY_STATUS(prepare_exported_polymorphic(unit, staging, tools, module, exported, index, p));
    return p;
  }
  if (exported.platforms.size() < 2) return p;
  // With locations, so that the compiler's diagnostics still point into the program.
  auto printed = util::run_process({.argv = {tools.opt.string(), "--mlir-print-debuginfo", "--allow-unregistered-dialect",
                                             module.string()},
                                    .timeout = std::chrono::minutes(10)});
  if (!printed) return tl::unexpected(printed.error());
  if (!printed->ok()) {
    return fail(Code::kInvalidArgument, "iree-opt could not print the module inside the serialized Exported: " +
                                            std::string(util::trim(printed->err)).substr(0, 2000));
  }
  std::string text = KILN_TRY(mlir::bind_vhlo_platform_index(printed->out, index));
  p.input = staging / (unit.name + ".vhlo.mlir");
  KILN_TRY_STATUS(util::write_file_atomic(p.input, text));
  p.key_tags.push_back("--kiln-jax-rewrite=1");
  auto info = mlir::inspect_text(text);
  if (info) {
    info->format = "jax-exported";
    p.info = std::move(*info);
  }
  return p;
}

Result<Prepared> prepare_program(const Unit& unit, const mlir::ModuleInfo& module, const fs::path& staging,
                                 const toolchain::Toolchain& tools);

// Dots with an algorithm become plain dots (mlir/dot_algorithm.h) in every
// form of input, and for the CPU every 16-bit dot sums in f32: MLIR text is
// rewritten as it is; bytecode, the portable artifact, an Exported's module
// and VHLO text are printed as StableHLO text first (inspection already
// said whether they may hold such a dot).
Status rewrite_dots(const Unit& unit, const mlir::ModuleInfo& module, const fs::path& staging,
                    const toolchain::Toolchain& tools, Prepared& p) {
  mlir::DotOptions options{unit.target.backend == target::Backend::kCpu};
  std::string text;
  {
    auto mapped = util::MappedFile::open(p.input);
    if (!mapped) return tl::unexpected(mapped.error());
    std::string_view bytes = mapped->bytes();
    bool is_text = mlir::detect_format(bytes) == mlir::Format::kText && !mlir::is_jax_exported(bytes);
    bool wanted = is_text ? mlir::has_dot_algorithm(bytes) || (options.f32_accumulation && mlir::has_narrow_dot(bytes))
                          : module.dot_algorithms || (options.f32_accumulation && module.narrow_dots);
    if (!wanted) return {};
    bool vhlo = !is_text || bytes.find("vhlo.dot_general") != std::string_view::npos;
    if (!vhlo) text.assign(bytes);
  }
  if (text.empty()) {
    text = KILN_TRY(toolchain::print_vhlo_as_stablehlo(tools, p.input).map_error([](Error e) {
      return e.context("printing the program as StableHLO text to rewrite its dot_general operations");
    }));
  }
  auto lowered = KILN_TRY(mlir::lower_dot_algorithms(text, options));
  text.clear();
  if (lowered.lowered + lowered.widened == 0) return {};
  p.input = staging / (unit.name + ".dots.mlir");
  KILN_TRY_STATUS(util::write_file_atomic(p.input, lowered.text));
  p.dot_algorithms = lowered.lowered;
  p.dots_f32_accumulation = lowered.widened;
  // The rewrite's version: a change to it must not serve modules of the old one.
  p.key_tags.push_back("--kiln-dots=1");
  return {};
}

Result<Prepared> prepare_input(const Unit& unit, const mlir::ModuleInfo& module, const fs::path& staging,
                               const toolchain::Toolchain& tools) {
  auto p = KILN_TRY(prepare_program(unit, module, staging, tools));
  KILN_TRY_STATUS(rewrite_dots(unit, module, staging, tools, p));
  return p;
}

Result<Prepared> prepare_program(const Unit& unit, const mlir::ModuleInfo& module, const fs::path& staging,
                                 const toolchain::Toolchain& tools) {
  if (module.format == "jax-exported") return prepare_exported(unit, staging, tools);
  Prepared p{unit.input, nullptr, {}, std::nullopt};
  if (module.format != "text") {
    if (unit.binding.empty()) return p;
    return fail(Code::kInvalidArgument,
                fmt::format("--bind needs the program as MLIR text (jax.export's Exported.mlir_module()); this input is "
                            "{}", module.format));
  }
  {
    // Most programs are not polymorphic: look before reading it all.
    auto mapped = util::MappedFile::open(unit.input);
    if (!mapped) return tl::unexpected(mapped.error());
    if (!mlir::is_shape_polymorphic(mapped->bytes().substr(0, 1 << 16)) && unit.binding.empty()) return p;
  }
  auto text = KILN_TRY(util::read_file(unit.input));
  if (!mlir::is_shape_polymorphic(text)) {
    if (unit.binding.empty()) return p;
    return fail(Code::kInvalidArgument, "cannot bind " + unit.binding.front().first +
                                            ": the program has no symbolic dimensions (it is no shape-polymorphic "
                                            "JAX export)");
  }
  // Without a binding the dimensions are only recorded: a program whose
  // @main kiln cannot read still compiles.
  auto dims = unit.binding.empty() ? mlir::symbolic_dims(text).value_or(std::vector<mlir::SymbolicDim>{})
                                   : KILN_TRY(mlir::symbolic_dims(text));
  size_t annotated = 0;
  std::string out = mlir::annotate_dynamic_broadcasts(text, &annotated);
  text.clear();
  if (!unit.binding.empty()) out = KILN_TRY(mlir::bind_dims(out, unit.binding));
  p.input = staging / unit.input.filename();
  KILN_TRY_STATUS(util::write_file_atomic(p.input, out));
  json names = json::array();
  for (const auto& d : dims) names.push_back(d.name);
  p.jax = {{"shape_polymorphic", true}, {"symbolic_dims", names}, {"broadcasts_annotated", annotated}};
  // The rewrite's version: a change to it must not serve modules of the old one.
  p.key_tags.push_back("--kiln-jax-rewrite=1");
  for (const auto& [name, value] : unit.binding) p.key_tags.push_back(fmt::format("--kiln-bind={}={}", name, value));
  if (!unit.binding.empty()) {
    auto info = mlir::inspect_text(out);
    if (info) {
      info->format = module.format;
      p.info = std::move(*info);
    }
  }
  return p;
}

// What one unit's compile knows once its inputs are read: the names it
// publishes under, the command, the cache key, and the problems met on the
// way that did not fail it.
struct UnitRun {
  const Unit& unit;
  std::string context;
  std::string base;
  fs::path final_module;
  fs::path final_metadata;
  fs::path staging;
  fs::path staged_module;
  std::string input_hash;
  std::optional<tuning::Record> tuned;
  fs::path configs;  // the executable configurations' folder; empty: none
  std::vector<std::pair<std::string, std::string>> texts;
  std::vector<std::string> flags;
  std::vector<std::string> argv;
  std::vector<std::string> recorded;  // argv with the published module's path
  cache::KeyParts parts;
  std::string key;
  std::string warning;
  nlohmann::json fallbacks = nlohmann::json::array();  // those applied, as the metadata records them
  std::vector<std::string> fallback_names;
  std::vector<std::string> fallback_notes;  // for users: which fallbacks built the module and why

  void warn(const std::string& what) { warning += (warning.empty() ? "" : "; ") + what; }
};

Status check_keep_f64(const Unit& unit, const Options& options, const std::string& context) {
  if (options.keep_f64 && (unit.target.backend == target::Backend::kVulkan || unit.target.backend == target::Backend::kMetal)) {
    return fail(Code::kInvalidArgument,
                fmt::format("{}: --keep-f64 is not available for {}: kiln's {} target has no 64-bit float arithmetic; "
                            "compile without it (f64 is computed as f32) or for cpu, cuda or rocm",
                            context, unit.target.spec, target::backend_name(unit.target.backend)));
  }
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> read_configs_if_any(const fs::path& configs) {
  if (configs.empty()) return std::vector<std::pair<std::string, std::string>>{};
  return read_configs(configs);
}

// The tuning record for this unit and the executable configurations to
// compile with. They are read before anything else: the key holds the
// digest of the texts actually compiled, never one a file claims. A damaged
// record costs this compile its tuning, not its result.
Status find_tuning(UnitRun& r, const Options& options, const toolchain::Toolchain& tools,
                   const tuning::Database* tuning) {
  if (tuning && options.use_tuning) {
    auto found = tuning->find({r.input_hash, r.unit.target.slug, tools.release, precision_name(options.precision),
                               invocation_name(options.invocation), tuning_options(options)});
    if (!found) r.warn("the tuning record was not used: " + found.error().message);
    if (found && *found) r.tuned = std::move(**found);
  }
  r.configs = r.tuned && !r.tuned->configs_dir.empty() ? r.tuned->configs_dir : options.executable_configs;
  auto texts = read_configs_if_any(r.configs);
  if (!texts && r.tuned) {
    r.warn("the tuning record was not used: " + texts.error().message);
    r.tuned.reset();
    r.configs = options.executable_configs;
    texts = read_configs_if_any(r.configs);
  }
  if (!texts) return tl::unexpected(texts.error().context(r.context));
  r.texts = std::move(*texts);
  return {};
}

// The staging folder's executable configurations, and the flag that has
// the compiler use them in place of its own.
constexpr const char* kConfigsDir = "executable-configs";
constexpr const char* kSubstituteConfigs = "--iree-hal-substitute-executable-configurations-from=executable-configs";

// Copies the configurations into the staging folder: executable
// configurations to executable-configs/, kernel objects (which replace an
// executable's code after the compiler built it) to executable-objects/.
Status stage_configs(UnitRun& r) {
  bool configs = false, objects = false;
  for (const auto& [name, text] : r.texts) {
    bool object = tuning::is_kernel_object(name);
    fs::path dir = r.staging / (object ? "executable-objects" : kConfigsDir);
    std::error_code ec;
    fs::create_directories(dir, ec);
    KILN_TRY_STATUS(util::write_file_atomic(dir / tuning::config_file_name(name), text));
    (object ? objects : configs) = true;
  }
  if (configs) r.flags.push_back(kSubstituteConfigs);
  if (objects) r.flags.push_back("--iree-hal-substitute-executable-objects-from=executable-objects");
  return {};
}

// The compiler's flags, command line and the cache key. Executable
// configurations are copied into the staging folder and named by a relative
// path: the compiler records the path in the module, which then does not
// depend on where the tuning database is, and a container sees the files in
// the one folder it mounts.
Status build_command(UnitRun& r, const Options& options, const toolchain::Toolchain& tools, const Prepared& prepared) {
  r.flags = r.unit.target.flags;
  auto extra = option_flags(options);
  r.flags.insert(r.flags.end(), extra.begin(), extra.end());
  if (r.tuned) r.flags.insert(r.flags.end(), r.tuned->compile_flags.begin(), r.tuned->compile_flags.end());
  std::vector<std::string> key_flags = cache::normalize_flags(r.flags);
  key_flags.insert(key_flags.end(), prepared.key_tags.begin(), prepared.key_tags.end());
  // What a compile of this key builds depends on the fallback table.
  if (may_fall_back(r.unit.target.backend) || may_repair_configs(r.unit.target.backend)) {
    key_flags.push_back(fmt::format("--kiln-fallbacks={}", kFallbackTableVersion));
  }
  std::string configs_digest;
  if (!r.configs.empty()) {
    KILN_TRY_STATUS(stage_configs(r));
    configs_digest = tuning::module_digest({}, r.texts);
  }
  r.argv = {tools.compile.string(), fs::absolute(prepared.input).string()};
  r.argv.insert(r.argv.end(), r.flags.begin(), r.flags.end());
  r.recorded = r.argv;
  r.argv.insert(r.argv.end(), {"-o", r.staged_module.string()});
  r.recorded.insert(r.recorded.end(), {"-o", r.final_module.string()});
  r.parts = {r.input_hash, key_flags, r.unit.target.slug, tools.release, tools.build, tools.revision,
             r.tuned ? tuning::module_digest(r.tuned->compile_flags, r.texts) : configs_digest};
  r.key = cache::key_of(r.parts);
  return {};
}

// Serves a cached module under this unit's names: the metadata of the
// compile that made it, with this unit's paths and the hit recorded.
Result<Outcome> serve_hit(UnitRun& r, const fs::path& cached, json metadata, const char* source) {
  std::error_code copy_ec;
  if (cached != r.staged_module) fs::copy_file(cached, r.staged_module, fs::copy_options::overwrite_existing, copy_ec);
  if (copy_ec) return fail(Code::kInternal, "copying from the cache failed: " + copy_ec.message());
  metadata["input"]["path"] = r.unit.input.string();
  metadata["output"]["path"] = r.final_module.filename().string();
  metadata["compiler_command"] = r.recorded;
  metadata["cache"] = {{"hit", true}, {"key", r.key}, {"source", source}, {"compiled_at", metadata.value("created_at", "")}};
  metadata["created_at"] = util::utc_timestamp();
  auto outcome = KILN_TRY(publish(r.staged_module, r.final_module, r.final_metadata, std::move(metadata), r.context));
  outcome.cache_hit = true;
  outcome.cache_source = source;
  outcome.warning = r.warning;
  return outcome;
}

std::optional<Outcome> look_up_local(UnitRun& r, cache::Store& store) {
  auto hit = store.lookup(r.key);
  if (!hit) r.warn("the cache could not be read: " + hit.error().message);
  if (!hit || !*hit) return std::nullopt;
  if (auto checked = record_from_json((*hit)->metadata, "the cache entry " + r.key.substr(0, 12)); !checked) {
    r.warn(checked.error().message);
    (void)store.discard(r.key);
  } else if (auto served = serve_hit(r, (*hit)->module, (*hit)->metadata, "local")) {
    return std::move(*served);
  } else {
    r.warn(served.error().message);
  }
  return std::nullopt;
}

std::optional<Outcome> look_up_shared(UnitRun& r, cache::Shared& shared, cache::Store* store) {
  auto fetched = shared.fetch(r.key, r.staged_module);
  if (!fetched) r.warn("the shared cache could not be read: " + fetched.error().message);
  if (!fetched || !*fetched) return std::nullopt;
  if (auto checked = record_from_json((*fetched)->metadata, "the shared cache entry " + r.key.substr(0, 12)); !checked) {
    r.warn(checked.error().message);
    return std::nullopt;
  }
  if (store) (void)store->insert(r.key, r.parts, r.staged_module, (*fetched)->metadata);
  if (auto served = serve_hit(r, r.staged_module, (*fetched)->metadata, "shared")) return std::move(*served);
  else r.warn(served.error().message);
  return std::nullopt;
}

// The local cache, then the shared one. A cache that cannot be read (full
// disk, permissions, a store that is down) costs this compile its shortcut,
// never its result; an entry whose metadata is damaged is a miss that this
// compile replaces.
std::optional<Outcome> look_up(UnitRun& r, const CacheUse& cache) {
  if (cache.store) {
    if (auto hit = look_up_local(r, *cache.store)) return hit;
  }
  if (cache.shared) return look_up_shared(r, *cache.shared, cache.store);
  return std::nullopt;
}

json target_json(const target::Target& target) {
  json out = {{"spec", target.spec}, {"backend", target::backend_name(target.backend)},
              {"arch", target.arch}, {"flags", target.flags},
              {"runtime_device", target.runtime_device}};
  if (!target.cpu.empty()) out["cpu"] = target.cpu;
  if (!target.note.empty()) out["note"] = target.note;
  return out;
}

void add_tuning_json(json& metadata, const tuning::Record& tuned) {
  metadata["tuning"] = {{"record", tuned.key},
                        {"summary", tuned.summary},
                        {"compile_flags", tuned.compile_flags},
                        {"dispatches", tuned.dispatches},
                        {"latency_ms", tuned.latency_ms},
                        {"baseline_ms", tuned.baseline_ms},
                        {"device", tuned.device},
                        {"measured_at", tuned.measured_at}};
  metadata["deployment"] = {{"runtime_flags", tuned.runtime_flags}, {"source", "tuning record " + tuned.key.substr(0, 12)}};
}

// The metadata of a module this unit compiled.
json module_metadata(const UnitRun& r, const Options& options, const mlir::ModuleInfo& module,
                     const toolchain::Toolchain& tools, const Prepared& prepared, const util::ProcessResult& result,
                     const std::string& executor, const std::string& output_hash) {
  std::error_code ec;
  std::vector<std::string> quoted;
  for (const auto& a : r.recorded) quoted.push_back(shell_quote(a));
  json metadata = {
      {"format", "kiln-module-metadata"},
      {"format_version", 1},
      {"kiln_version", KILN_VERSION},
      {"iree", {{"release", tools.release}, {"build", tools.build}, {"revision", tools.revision}}},
      {"created_at", util::utc_timestamp()},
      {"target", target_json(r.unit.target)},
      {"options",
       {{"opt_level", options.opt_level.empty() ? json(nullptr) : json(options.opt_level)},
        {"data_tiling", options.data_tiling ? json(*options.data_tiling) : json(nullptr)},
        {"extra_flags", options.extra_flags}}},
      {"compiler_command", r.recorded},
      {"compiler_command_line", util::join(quoted, " ")},
      {"executor", executor},
      {"input",
       {{"path", r.unit.input.string()}, {"sha256", r.input_hash}, {"size_bytes", fs::file_size(r.unit.input, ec)},
        {"format", module.format}, {"module", module.name}}},
      {"output",
       {{"path", r.final_module.filename().string()}, {"sha256", output_hash},
        {"size_bytes", fs::file_size(r.staged_module, ec)}}},
      {"functions", functions_json(prepared.info ? *prepared.info : module)},
      {"compile", {{"wall_seconds", result.wall_seconds}, {"peak_rss_bytes", result.peak_rss_kib * 1024}}},
      {"cache", {{"hit", false}, {"key", r.key}}},
      {"precision", precision_name(options.precision)},
      {"invocation", invocation_name(options.invocation)},
      {"demotions", demotions(r.flags)},
  };
  if (!prepared.jax.is_null()) metadata["jax"] = prepared.jax;
  if (prepared.dot_algorithms + prepared.dots_f32_accumulation > 0) {
    metadata["rewrites"] = {{"dot_algorithms", prepared.dot_algorithms},
                            {"dots_f32_accumulation", prepared.dots_f32_accumulation}};
  }
  if (!r.fallbacks.empty()) metadata["fallbacks"] = r.fallbacks;
  if (!r.unit.binding.empty()) {
    metadata["binding"] = json::object();
    for (const auto& [name, value] : r.unit.binding) metadata["binding"][name] = value;
  }
  if (r.tuned) add_tuning_json(metadata, *r.tuned);
  return metadata;
}

// A cache that cannot take the entry (full disk, permissions, a store that is
// down) costs the next run a compile, not this one its result.
void store_in_caches(UnitRun& r, const CacheUse& cache, const json& metadata) {
  if (cache.store) {
    if (auto st = cache.store->insert(r.key, r.parts, r.staged_module, metadata); !st) {
      r.warn("the module was not cached: " + st.error().message);
    }
  }
  if (cache.shared) {
    if (auto st = cache.shared->publish(r.key, r.parts, r.staged_module, metadata); !st) {
      r.warn("the module was not put in the shared cache: " + st.error().message);
    }
  }
}

// Adds flags to the command, after every other flag (so they win).
void add_flags(UnitRun& r, const std::vector<std::string>& flags) {
  r.flags.insert(r.flags.end(), flags.begin(), flags.end());
  r.argv.insert(r.argv.end() - 2, flags.begin(), flags.end());  // before "-o PATH"
  r.recorded.insert(r.recorded.end() - 2, flags.begin(), flags.end());
}

void substitute_configs(UnitRun& r) {
  if (std::find(r.flags.begin(), r.flags.end(), kSubstituteConfigs) == r.flags.end()) add_flags(r, {kSubstituteConfigs});
}

// Records an applied fallback: its metadata entry (`executables` when it
// applies to those alone) and the note for users.
void record_fallback(UnitRun& r, const Fallback& fallback, const util::ProcessResult& failed,
                     const std::vector<std::string>& executables = {}) {
  r.fallback_names.emplace_back(fallback.name);
  nlohmann::json entry = fallback_json(fallback, symptom_line(failed.err, fallback));
  entry["failed_compile_seconds"] = failed.wall_seconds;
  std::string scope;
  if (!executables.empty()) {
    entry["executables"] = executables;
    scope = " for " + util::join(executables, ", ");
  }
  r.fallbacks.push_back(std::move(entry));
  r.fallback_notes.push_back(fmt::format("built with the fallback '{}'{}: {}", fallback.name, scope, fallback.why));
}

// Adds a fallback's flags to the whole program and records it.
void apply_fallback(UnitRun& r, const Fallback& fallback, const util::ProcessResult& failed) {
  add_flags(r, fallback.flags);
  record_fallback(r, fallback, failed);
}

// The last fallback, applied to the failing executables alone, did not
// build the program: its flags go to the whole program.
void widen_fallback(UnitRun& r, const Fallback& fallback) {
  r.fallbacks.back().erase("executables");
  add_flags(r, fallback.flags);
  r.fallback_notes.back() = fmt::format("built with the fallback '{}' (for the whole program: the failing "
                                        "executables alone did not build): {}",
                                        fallback.name, fallback.why);
}

// Whether kiln may run this command up to its executable configurations:
// not when its own flags already stop it early or start it late.
bool may_stop_early(const UnitRun& r) {
  return std::none_of(r.flags.begin(), r.flags.end(), [](const std::string& f) {
    return f.starts_with("--compile-to") || f.starts_with("--compile-from") || f.starts_with("--compile-mode");
  });
}

// Runs the compiler, with `more` flags, up to its executable configurations
// (a second or so) and dumps them into `dump`; whether it got there.
bool dump_configs(UnitRun& r, const fs::path& dump, const std::vector<std::string>& more, const Options& options,
                  Executor& executor, const Prepared& prepared) {
  std::vector<std::string> argv;
  for (size_t i = 0; i + 2 < r.argv.size(); ++i) {  // all but "-o PATH"
    if (!r.argv[i].starts_with("--iree-hal-dump-executable-configurations-to")) argv.push_back(r.argv[i]);
  }
  argv.insert(argv.end(), more.begin(), more.end());
  // Only the dumped configurations are wanted: the program itself (with
  // its constants, gigabytes for some models) goes nowhere, as bytecode.
  argv.insert(argv.end(), {"--compile-to=executable-configurations",
                           "--iree-hal-dump-executable-configurations-to=" + dump.string(), "--emit-mlir-bytecode",
                           "-o", "/dev/null"});
  auto result = executor.run({argv, prepared.input, r.staging, options.timeout, {}, false, r.unit.cancel});
  return result && result->ok();
}

// Repairs the configurations that the table of configuration repairs knows
// the compiler would fail to build; the compile then substitutes the
// repaired ones. Best effort: a program that fails this early fails the
// same way in the full compile, which reports it.
void repair_configs(UnitRun& r, const Options& options, Executor& executor, const Prepared& prepared) {
  if (!may_repair_configs(r.unit.target.backend) || !may_stop_early(r)) return;
  fs::path dump = r.staging / "config-check";
  RepairedConfigs repaired;
  if (dump_configs(r, dump, {}, options, executor, prepared)) {
    repaired = repair_dumped_configs(dump, r.staging / kConfigsDir, r.unit.target.backend);
  }
  std::error_code ec;
  fs::remove_all(dump, ec);
  if (repaired.empty()) return;
  substitute_configs(r);
  for (const auto& repair : config_repairs()) {
    auto it = repaired.find(std::string(repair.name));
    if (it == repaired.end()) continue;
    r.fallback_names.emplace_back(repair.name);
    r.fallbacks.push_back({{"name", repair.name},
                           {"table_version", kFallbackTableVersion},
                           {"executables", it->second},
                           {"why", repair.why}});
    r.fallback_notes.push_back(fmt::format("built with the configuration repair '{}' of {}: {}", repair.name,
                                           util::join(it->second, ", "), repair.why));
  }
}

// Applies a fallback to the executables that failed alone: their
// configurations as the compiler chooses them under the fallback's flags are
// substituted, and every other dispatch keeps the compiler's first choice.
// False (nothing changed) when the failing executables cannot be told or
// their configurations were not all made.
bool substitute_failing(UnitRun& r, const Fallback& fallback, const util::ProcessResult& failed,
                        const Options& options, Executor& executor, const Prepared& prepared) {
  auto names = failing_executables(failed.err);
  if (names.empty() || !may_stop_early(r)) return false;
  // A compile that dumps its configurations or benchmarks (kiln tune's
  // reference) dumps the compiler's own choice of a substituted executable,
  // not the substitute: the tuner would start from a configuration that
  // fails. Those take the whole-program fallback.
  bool dumps = std::any_of(r.flags.begin(), r.flags.end(), [](const std::string& f) {
    return f.starts_with("--iree-hal-dump-executable-configurations-to") ||
           f.starts_with("--iree-hal-dump-executable-benchmarks-to");
  });
  if (dumps) return false;
  fs::path dump = r.staging / "fallback-configs";
  std::map<std::string, std::string> texts;
  std::error_code ec;
  if (dump_configs(r, dump, fallback.flags, options, executor, prepared)) {
    for (const auto& entry : fs::directory_iterator(dump, ec)) {
      auto text = util::read_file(entry.path());
      std::string name = text ? executable_name(*text) : "";
      if (std::find(names.begin(), names.end(), name) != names.end()) texts[name] = std::move(*text);
    }
  }
  fs::remove_all(dump, ec);
  if (texts.size() != names.size()) return false;
  fs::create_directories(r.staging / kConfigsDir, ec);
  for (const auto& [name, text] : texts) {
    if (!util::write_file_atomic(r.staging / kConfigsDir / tuning::config_file_name(name), text)) return false;
  }
  substitute_configs(r);
  record_fallback(r, fallback, failed, names);
  return true;
}

// Runs the compiler. A failure that the fallback table knows is compiled
// again with the fallback, first for the failing executables alone, then for
// the whole program, each entry at most once; any other failure, or one
// that no entry left untried matches, is the unit's error.
Result<util::ProcessResult> run_compiler(UnitRun& r, const Options& options, Executor& executor,
                                         const Prepared& prepared) {
  const Fallback* narrow = nullptr;  // applied to the failing executables alone, not yet widened
  for (;;) {
    auto result = executor.run({r.argv, prepared.input, r.staging, options.timeout, {}, false, r.unit.cancel});
    if (!result) return tl::unexpected(result.error().context(r.context));
    if (result->ok()) return std::move(*result);
    bool cancelled = r.unit.cancel && r.unit.cancel->load();
    if (narrow && !cancelled && !result->timed_out && !result->out_of_memory) {
      widen_fallback(r, *narrow);
      narrow = nullptr;
      continue;
    }
    bool rejected = result->exit_status > 0 && result->term_signal == 0 && !result->timed_out && !result->out_of_memory;
    const Fallback* fallback = rejected
                                   ? match_fallback(result->err, r.unit.target.backend, r.fallback_names)
                                   : nullptr;
    if (!fallback) return tl::unexpected(compile_failure(*result, r.unit, options, r.base, r.recorded, r.flags));
    if (substitute_failing(r, *fallback, *result, options, executor, prepared)) {
      narrow = fallback;
    } else {
      apply_fallback(r, *fallback, *result);
    }
  }
}

// Runs the compiler once the caches missed (under the fleet's key lock, if
// any), then caches and publishes the module.
Result<Outcome> compile_and_publish(UnitRun& r, const Options& options, const mlir::ModuleInfo& module,
                                    const toolchain::Toolchain& tools, Executor& executor, const CacheUse& cache,
                                    const Prepared& prepared) {
  std::string explanation;
  if (cache.store && cache.explain) explanation = explain_miss(*cache.store, r.parts);
  // One compile of a key at a time across the fleet: whoever waited finds
  // the other's module in the cache.
  std::unique_ptr<cache::KeyLocks::Held> held;
  if (cache.locks) {
    auto lock = cache.locks->hold(r.key, r.unit.cancel);
    if (!lock) return tl::unexpected(lock.error().context(r.context));
    held = std::move(*lock);
    if (auto hit = look_up(r, cache)) return std::move(*hit);
  }

  util::pause_at("compile-before-compiler");
  repair_configs(r, options, executor, prepared);
  auto result = KILN_TRY(run_compiler(r, options, executor, prepared));

  auto output_hash = util::sha256_file(r.staged_module);
  if (!output_hash) return tl::unexpected(output_hash.error().context(r.context + ": the compiler wrote no module"));
  json metadata = module_metadata(r, options, module, tools, prepared, result, executor.name(), *output_hash);
  store_in_caches(r, cache, metadata);
  auto outcome = KILN_TRY(publish(r.staged_module, r.final_module, r.final_metadata, std::move(metadata), r.context));
  outcome.cache_explanation = std::move(explanation);
  outcome.warning = std::move(r.warning);
  outcome.note = util::join(r.fallback_notes, "; ");
  return outcome;
}

}  // namespace

std::string unit_base_name(const Unit& unit) {
  std::string base = unit.name;
  if (!unit.binding.empty()) base += "." + mlir::binding_slug(unit.binding);
  return base + "." + unit.target.slug;
}

Result<Outcome> run(const Unit& unit, const Options& options, const mlir::ModuleInfo& module,
                    const toolchain::Toolchain& tools, Executor& executor, const CacheUse& cache,
                    const tuning::Database* tuning) {
  UnitRun r{unit};
  r.context = fmt::format("compiling {} for {}", unit.input.string(), unit.target.spec);
  KILN_TRY_STATUS(check_keep_f64(unit, options, r.context));
  r.base = unit_base_name(unit);
  fs::path output_dir = fs::absolute(unit.output_dir);
  r.final_module = output_dir / (r.base + ".vmfb");
  r.final_metadata = output_dir / (r.base + ".json");

  // Staged inside the output folder so publishing is a rename, never a copy.
  // Staging folders of kiln processes that died go first; this one records
  // its owner so that a later process can tell.
  util::reap_orphans(output_dir, ".kiln-staging-");
  auto staging = util::TempDir::create(output_dir, ".kiln-staging-");
  if (!staging) return tl::unexpected(staging.error().context(r.context));
  if (auto marked = util::mark_owner(staging->path()); !marked) return tl::unexpected(marked.error().context(r.context));
  r.staging = staging->path();
  r.staged_module = r.staging / (r.base + ".vmfb");
  auto prepared = prepare_input(unit, module, r.staging, tools);
  if (!prepared) return tl::unexpected(prepared.error().context(r.context));
  // The log of an earlier failed compile of this unit would outlive the fix.
  std::error_code stale_ec;
  fs::remove(output_dir / (r.base + ".log"), stale_ec);

  auto input_hash = unit.input_sha256.empty() ? util::sha256_file(unit.input) : Result<std::string>(unit.input_sha256);
  if (!input_hash) return tl::unexpected(input_hash.error().context(r.context));
  r.input_hash = *input_hash;
  KILN_TRY_STATUS(find_tuning(r, options, tools, tuning));
  KILN_TRY_STATUS(build_command(r, options, tools, *prepared));
  if (auto hit = look_up(r, cache)) return std::move(*hit);
  return compile_and_publish(r, options, module, tools, executor, cache, *prepared);
}

}  // namespace kiln::compile
