#include <iostream>

#include <fmt/format.h>

#include "kiln/array/npy.h"
#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/cli/run_common.h"
#include "kiln/runtime/runner.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/file.h"

namespace kiln::cli {

namespace fs = std::filesystem;

Result<int> run_run(Context& context) {
  CLI::App app{"Run a function of a compiled module once, on inputs from .npy/.npz files or seeded random values.\n"
               "The inputs used and the outputs produced are saved as .npy, so the run can be repeated.",
               "run"};
  std::string module, function, device, out_dir;
  double timeout = 600;
  bool json = false;
  InputOptions inputs;
  app.add_option("module", module, "compiled module (.vmfb)")->required();
  app.add_option("--function", function, "function to run (default: the module's one public function)");
  app.add_option("--device", device, "cpu, cuda, vulkan, hip, or an IREE device URI (default: the module's target)");
  add_input_options(app, inputs);
  std::string executor_name;
  app.add_option("--executor", executor_name, "where the runtime tools run: local, or docker (kiln's image)")
      ->check(CLI::IsMember({"local", "docker"}));
  app.add_option("-o,--output-dir", out_dir, "where inputs and outputs are saved (default: MODULE.run/)");
  app.add_option("--timeout", timeout, "time limit in seconds (default 600)");
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto selected = KILN_TRY(select_executor(context.config, executor_name, Need::kRuntime));
  const auto& tools = selected.tools;
  auto& executor = *selected.executor;
  auto sig = KILN_TRY(runtime::load(module, function, tools, executor));
  auto values = KILN_TRY(gather_inputs(sig, inputs));
  fs::path dir = out_dir.empty() ? fs::path(module).replace_extension(".run") : fs::path(out_dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + dir.string() + ": " + ec.message());
  auto scratch = KILN_TRY(util::TempDir::create(dir, ".kiln-run-"));
  runtime::RunSpec spec{sig, choose_device(device, sig), values, scratch.path(),
                        std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000))};
  auto outputs = KILN_TRY(runtime::run(tools, executor, spec));
  KILN_TRY_STATUS(save_arrays(dir, "input", values));
  KILN_TRY_STATUS(save_arrays(dir, "output", outputs));
  // The same arrays as one archive each, named like the arguments, for --inputs.
  std::vector<std::pair<std::string, array::Array>> in_archive, out_archive;
  for (size_t i = 0; i < values.size(); ++i) {
    in_archive.emplace_back(sig.inputs[i].name.empty() ? fmt::format("arg{}", i) : sig.inputs[i].name, values[i]);
  }
  for (size_t i = 0; i < outputs.size(); ++i) out_archive.emplace_back(fmt::format("out{}", i), outputs[i]);
  KILN_TRY_STATUS(array::write_npz(dir / "inputs.npz", in_archive));
  KILN_TRY_STATUS(array::write_npz(dir / "outputs.npz", out_archive));

  nlohmann::json record = {{"module", module}, {"function", sig.function}, {"device", spec.device},
                           {"signature_from", sig.source}, {"generated_inputs", inputs.input_files.empty() && inputs.inputs_archive.empty()},
                           {"seed", inputs.seed}, {"inputs", nlohmann::json::array()}, {"outputs", nlohmann::json::array()}};
  for (size_t i = 0; i < values.size(); ++i) {
    record["inputs"].push_back({{"file", (dir / fmt::format("input{}.npy", i)).string()}, {"summary", summarize(values[i])}});
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    record["outputs"].push_back({{"file", (dir / fmt::format("output{}.npy", i)).string()}, {"summary", summarize(outputs[i])}});
  }
  KILN_TRY_STATUS(util::write_file_atomic(dir / "run.json", record.dump(2) + "\n"));
  if (json) {
    std::cout << record.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("ran @{} of {} on {}\n", sig.function, module, spec.device);
  for (size_t i = 0; i < values.size(); ++i) std::cout << fmt::format("  input{}.npy   {}\n", i, summarize(values[i]));
  for (size_t i = 0; i < outputs.size(); ++i) std::cout << fmt::format("  output{}.npy  {}\n", i, summarize(outputs[i]));
  std::cout << "saved in " << dir.string() << "/\n";
  return 0;
}

}  // namespace kiln::cli
