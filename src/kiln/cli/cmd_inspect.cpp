#include <iostream>

#include "kiln/cli/output.h"
#include "kiln/cli/parse.h"
#include "kiln/mlir/inspect.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::cli {

// Text is read by kiln itself; only bytecode needs the compiler's iree-opt,
// so the toolchain is looked up lazily.
mlir::BytecodePrinter lazy_printer(const config::Config& config) {
  return [&config](const std::filesystem::path& file) -> Result<std::string> {
    auto tools = toolchain::find(config);
    if (!tools) return tl::unexpected(tools.error().context("reading MLIR bytecode needs the IREE tools"));
    return toolchain::print_as_text(*tools, file);
  };
}

Result<int> run_inspect(Context& context) {
  CLI::App app{"Describe a StableHLO file (MLIR text, MLIR bytecode, or a JAX portable artifact).", "inspect"};
  std::string file;
  bool json = false;
  app.add_option("file", file, "StableHLO file")->required();
  app.add_flag("--json", json, "print JSON");
  if (KILN_TRY(parse_args(app, context))) return 0;

  auto module = KILN_TRY(mlir::inspect_file(file, lazy_printer(context.config)));
  if (json) {
    std::cout << module_json(file, module).dump(2) << "\n";
  } else {
    std::cout << describe_module(file, module);
  }
  return 0;
}

}  // namespace kiln::cli
