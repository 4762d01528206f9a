// `kiln __exec --report FILE -- TOOL ARGS...`: what the container executor
// runs inside kiln's image. It runs the tool as kiln runs any child (own
// process group, stdin from /dev/null), passes its output through, writes its
// wall time and peak memory to FILE, and exits with its status (128 + signal
// for a crash). Not for people: it is not listed in `kiln --help`.
#include <unistd.h>

#include <iostream>

#include "kiln/cli/parse.h"
#include "kiln/util/file.h"
#include "kiln/util/subprocess.h"

namespace kiln::cli {

Result<int> run_exec(Context& context) {
  auto dash = std::find(context.args.begin(), context.args.end(), "--");
  if (dash == context.args.end() || dash + 1 == context.args.end()) {
    return fail(Code::kInvalidArgument, "usage: kiln __exec --report FILE -- TOOL ARGS...");
  }
  std::vector<std::string> argv(dash + 1, context.args.end());
  std::vector<std::string> own(context.args.begin(), dash);
  std::string report = own.size() == 2 && own[0] == "--report" ? own[1] : "";
  auto result = KILN_TRY(util::run_process({.argv = argv}));
  std::cout << result.out << std::flush;
  std::cerr << result.err << std::flush;
  if (!report.empty()) {
    nlohmann::json j = {{"wall_seconds", result.wall_seconds}, {"peak_rss_kib", result.peak_rss_kib},
                        {"exit_status", result.exit_status}, {"term_signal", result.term_signal}};
    (void)util::write_file_atomic(report, j.dump());
  }
  return result.term_signal ? 128 + result.term_signal : result.exit_status;
}

}  // namespace kiln::cli
