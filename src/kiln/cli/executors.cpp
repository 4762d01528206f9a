#include "kiln/cli/executors.h"

#include "kiln/docker/container_executor.h"

namespace kiln::cli {

Result<Selected> select_executor(const Context& context, const std::string& flag, Need need) {
  std::string name = flag.empty() ? context.settings.executor : flag;
  if (name == "docker") {
    auto executor = KILN_TRY(docker::ContainerExecutor::from_settings(context.settings));
    toolchain::Toolchain tools = executor->toolchain();
    if (need == Need::kCompiler && tools.release != toolchain::pinned_release()) {
      return fail(Code::kFailedPrecondition,
                  "the image " + executor->image() + " holds IREE " + tools.release + ", but this kiln knows the flags of IREE " +
                      toolchain::pinned_release() + "; rebuild it with scripts/build-images.sh");
    }
    return Selected{std::move(executor), std::move(tools)};
  }
  auto executor = KILN_TRY(compile::make_local_executor(name));
  auto tools = need == Need::kCompiler ? KILN_TRY(toolchain::find_pinned(context.config)) : KILN_TRY(toolchain::find_runtime(context.config));
  return Selected{std::move(executor), std::move(tools)};
}

}  // namespace kiln::cli
