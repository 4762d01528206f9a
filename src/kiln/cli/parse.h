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

// -O2 reaches CLI11 as "-O" with "2" (as a C compiler spells it); kiln's
// levels are O0..O3, so a bare digit gets its "O".
inline CLI::Option* add_opt_level(CLI::App& app, std::string& level) {
  return app.add_option("-O,--opt-level", level, "optimization level O0..O3 (-O2 or -O O2; default: the compiler's)")
      ->transform(CLI::Validator(
          [](std::string& value) {
            if (value.size() == 1 && value[0] >= '0' && value[0] <= '3') value = "O" + value;
            return std::string();
          },
          ""));
}

}  // namespace kiln::cli
