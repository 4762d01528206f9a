// The subcommand table: each command has a name, a one-line summary and a
// handler that parses its own options. main() only dispatches.
#pragma once

#include <string>
#include <vector>

#include "kiln/config/settings.h"
#include "kiln/util/error.h"

namespace kiln::cli {

struct Context {
  std::vector<std::string> args;  // after the command name
  config::Config config;      // the values as written, with their origins
  config::Settings settings;  // the same, checked and typed once at start
};

// A handler returns the process exit status for outcomes that are not
// errors (0, or 1 for "ran, but the answer is no"); errors travel as values.
using Handler = Result<int> (*)(Context& context);

struct Command {
  const char* name;
  const char* summary;  // nullptr: internal, not listed
  Handler handler;
};

const std::vector<Command>& commands();

Result<int> run_inspect(Context& context);
Result<int> run_compile(Context& context);
Result<int> run_check(Context& context);
Result<int> run_schema(Context& context);
Result<int> run_targets(Context& context);
Result<int> run_doctor(Context& context);
Result<int> run_run(Context& context);
Result<int> run_validate(Context& context);
Result<int> run_bench(Context& context);
Result<int> run_cache(Context& context);
Result<int> run_exec(Context& context);
Result<int> run_serve(Context& context);
Result<int> run_worker(Context& context);
Result<int> run_tune(Context& context);
Result<int> run_profile(Context& context);


}  // namespace kiln::cli
