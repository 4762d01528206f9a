#include <iostream>

#include <fmt/format.h>

#include "kiln/cli/output.h"
#include "kiln/cli/parse.h"
#include "kiln/compile/compile.h"
#include "kiln/job/job.h"
#include "kiln/mlir/inspect.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

mlir::BytecodePrinter lazy_printer(const config::Config& config);

namespace {

namespace fs = std::filesystem;

struct Request {
  job::Job job;
  bool json = false;
};

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
  std::vector<std::string> inputs, targets, flags;
  std::string job_file, output_dir, name, opt_level;
  double timeout = 0;
  bool json = false, tiling = false, no_tiling = false;
  app.add_option("inputs", inputs, "StableHLO files");
  app.add_option("--job", job_file, "job file (JSON; see 'kiln schema')");
  app.add_option("-t,--target", targets, "target: cuda:<sm_NN|gpu>, cpu[:<arch>[:<cpu>]], vulkan:<t>, metal:macos, rocm:<gfx>");
  app.add_option("-o,--output-dir", output_dir, "output folder (default: .)");
  app.add_option("--name", name, "output base name (one input only; default: the input's name)");
  app.add_option("-O,--opt-level", opt_level, "optimization level O0..O3 (default: the compiler's)");
  app.add_flag("--data-tiling", tiling, "enable data tiling");
  app.add_flag("--no-data-tiling", no_tiling, "disable data tiling");
  app.add_option("--flag", flags, "extra iree-compile flag, e.g. --flag=--iree-opt-const-eval=false");
  app.add_option("--timeout", timeout, "time limit per compile, seconds");
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return std::nullopt;

  Request request;
  request.json = json;
  job::Job& job = request.job;
  if (!job_file.empty()) {
    if (!inputs.empty()) return fail(Code::kInvalidArgument, "give input files or --job, not both");
    job = KILN_TRY(job::load(job_file));
  } else {
    if (inputs.empty()) return fail(Code::kInvalidArgument, "no input: give a StableHLO file or --job (see 'kiln compile --help')");
    if (targets.empty()) return fail(Code::kInvalidArgument, "no target: add --target, e.g. --target cpu --target cuda:h100 ('kiln targets' lists them)");
    if (!name.empty() && inputs.size() > 1) return fail(Code::kInvalidArgument, "--name needs exactly one input");
    for (const auto& in : inputs) {
      std::error_code ec;
      if (!fs::is_regular_file(in, ec)) {
        return fail(fs::exists(in, ec) ? Code::kInvalidArgument : Code::kNotFound, in + ": no such file");
      }
      job.inputs.push_back({in, name.empty() ? compile::default_name(in) : name});
    }
    job.output_dir = output_dir.empty() ? fs::path(".") : fs::path(output_dir);
  }
  for (const auto& spec : targets) {
    if (!job_file.empty()) break;  // the job names its targets
    job.targets.push_back(KILN_TRY(target::resolve(spec)));
  }
  if (!job_file.empty() && !targets.empty()) return fail(Code::kInvalidArgument, "--target cannot be combined with --job; edit the job's targets");
  if (!output_dir.empty()) job.output_dir = output_dir;
  if (!opt_level.empty()) job.options.opt_level = opt_level;
  if (tiling && no_tiling) return fail(Code::kInvalidArgument, "--data-tiling and --no-data-tiling contradict each other");
  if (tiling || no_tiling) job.options.data_tiling = tiling;
  flags.insert(flags.end(), passthrough.begin(), passthrough.end());
  job.options.extra_flags.insert(job.options.extra_flags.end(), flags.begin(), flags.end());
  if (job.options.opt_level.empty()) job.options.opt_level = context.config.get("opt_level");
  if (timeout > 0) {
    job.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000));
  } else if (!job.has_timeout) {
    double seconds = KILN_TRY(config::parse_duration("compile_timeout", context.config.get("compile_timeout")));
    job.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  KILN_TRY_STATUS(compile::validate(job.options));
  return std::optional<Request>(std::move(request));
}

void print_unit(const compile::Outcome& outcome, const std::string& spec) {
  const auto& m = outcome.metadata;
  std::cout << fmt::format("{:<12} {}  ({}, {:.2f} s, compiler peak {})\n", spec, outcome.module_path.string(),
                           util::human_bytes(m["output"]["size_bytes"].get<double>()),
                           m["compile"]["wall_seconds"].get<double>(),
                           util::human_bytes(m["compile"]["peak_rss_bytes"].get<double>()));
  if (m["target"].contains("note")) std::cout << "             note: " << m["target"]["note"].get<std::string>() << "\n";
}

}  // namespace

Result<int> run_compile(Context& context) {
  auto request = KILN_TRY(parse_request(context));
  if (!request) return 0;
  job::Job& job = request->job;

  auto tools = KILN_TRY(toolchain::find_pinned(context.config));
  auto executor = KILN_TRY(compile::make_executor(context.config.get("executor")));
  std::error_code ec;
  fs::create_directories(job.output_dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create output folder " + job.output_dir.string() + ": " + ec.message());

  nlohmann::json units = nlohmann::json::array();
  std::optional<Error> first_error;
  auto printer = lazy_printer(context.config);
  for (const auto& input : job.inputs) {
    auto module = mlir::inspect_file(input.path, printer);
    for (const auto& target : job.targets) {
      Result<compile::Outcome> outcome = module ? compile::run({input.path, input.name, target, job.output_dir},
                                                              job.options, *module, tools, *executor)
                                                : Result<compile::Outcome>(tl::unexpected(module.error()));
      if (outcome) {
        if (!request->json) print_unit(*outcome, target.spec);
        units.push_back({{"input", input.path.string()}, {"target", target.spec}, {"ok", true},
                         {"module", outcome->module_path.string()}, {"metadata", outcome->metadata_path.string()},
                         {"record", outcome->metadata}});
      } else {
        // A cancelled run stops everything; other failures stop only this unit.
        if (outcome.error().code == Code::kCancelled) return tl::unexpected(outcome.error());
        if (!request->json) std::cerr << "kiln: error: " << outcome.error().message << "\n";
        units.push_back({{"input", input.path.string()}, {"target", target.spec}, {"ok", false},
                         {"error", {{"code", code_name(outcome.error().code)}, {"message", outcome.error().message}}}});
        if (!first_error) first_error = outcome.error();
      }
      if (!module) break;  // an unreadable input fails once, not once per target
    }
  }
  if (request->json) std::cout << nlohmann::json{{"ok", !first_error}, {"units", units}}.dump(2) << "\n";
  return first_error ? exit_code(first_error->code) : 0;
}

}  // namespace kiln::cli
