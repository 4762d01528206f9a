#include <iostream>

#include <fmt/format.h>

#include "kiln/array/npy.h"
#include "kiln/cli/module_binding.h"
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
  ModuleOptions o;
  std::string out_dir;
  bool json = false;
  add_module_options(app, o);
  app.add_option("-o,--output-dir", out_dir, "where inputs and outputs are saved (default: MODULE.run/)");
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto loaded = KILN_TRY(load_module(context, o));
  const auto& sig = loaded.signature;
  const auto& values = loaded.inputs;
  const std::string& module = o.module;
  const InputOptions& inputs = o.inputs;
  fs::path dir = KILN_TRY(output_folder(o.module, out_dir, ".run"));
  auto scratch = KILN_TRY(util::TempDir::create(dir, ".kiln-run-"));
  runtime::RunSpec spec{sig, choose_device(o.device, sig), values, scratch.path(), loaded.timeout, runtime_flags_for(o, sig)};
  auto outputs = KILN_TRY(runtime::run(loaded.selected.tools, *loaded.selected.executor, spec));
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
  if (auto binding = module_binding(module); !binding.is_null()) record["binding"] = binding;
  KILN_TRY_STATUS(util::write_file_atomic(dir / "run.json", record.dump(2) + "\n"));
  if (json) {
    std::cout << record.dump(2) << "\n";
    return 0;
  }
  std::cout << fmt::format("ran @{} of {} on {}\n", sig.function, module, spec.device);
  for (size_t i = 0; i < values.size(); ++i) std::cout << fmt::format("  input{}.npy   {}\n", i, summarize(values[i]));
  for (size_t i = 0; i < outputs.size(); ++i) std::cout << fmt::format("  output{}.npy  {}\n", i, summarize(outputs[i]));
  if (auto line = binding_line(record.value("binding", nlohmann::json())); !line.empty()) std::cout << "  " << line << "\n";
  std::cout << "saved in " << dir.string() << "/\n";
  return 0;
}

}  // namespace kiln::cli
