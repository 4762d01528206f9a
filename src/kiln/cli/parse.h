// CLI11 glue shared by the command handlers.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "kiln/cli/commands.h"

namespace kiln::cli {

// Parses `context.args` into `app`. Returns true when the command should
// stop with status 0 (it printed --help).
inline Result<bool> parse_args(CLI::App& app, Context& context) {
  std::vector<std::string> reversed(context.args.rbegin(), context.args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return true;
  } catch (const CLI::ParseError& e) {
    return fail(Code::kInvalidArgument, std::string(e.what()) + " (see 'kiln " + app.get_name() + " --help')");
  }
  return false;
}

}  // namespace kiln::cli
