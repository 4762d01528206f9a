// Chooses where the IREE tools run (the `executor` setting or --executor)
// and the toolchain that goes with it: the local one, or the one inside
// kiln's Docker image.
#pragma once

#include <memory>
#include <string>

#include "kiln/compile/executor.h"
#include "kiln/cli/commands.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::cli {

struct Selected {
  std::unique_ptr<compile::Executor> executor;
  toolchain::Toolchain tools;
};

enum class Need { kCompiler, kRuntime };

// `flag` overrides the setting when not empty.
Result<Selected> select_executor(const Context& context, const std::string& flag, Need need);

}  // namespace kiln::cli
