#include "kiln/compile/executor.h"

namespace kiln::compile {

Result<util::ProcessResult> LocalExecutor::run(const ExecRequest& request) {
  return util::run_process(
      {.argv = request.argv, .cwd = request.output_dir, .timeout = request.timeout, .cancel = request.cancel});
}

Result<std::unique_ptr<Executor>> make_local_executor(const std::string& name) {
  if (name == "local") return std::make_unique<LocalExecutor>();
  return fail(Code::kInvalidArgument, "unknown executor '" + name + "'; the executors are: local, docker");
}

}  // namespace kiln::compile
