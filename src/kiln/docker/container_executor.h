// Runs the IREE tools in a throw-away container of kiln's image: no network,
// read-only root file system, a size-limited tmpfs for scratch, every
// capability dropped, no-new-privileges, a non-root user, limits on
// processes, memory and CPU, the inputs mounted read-only and only the unit's
// own output folder writable. The container is removed in every outcome.
//
// Host paths are mounted at the same paths inside the container, so argv
// needs no rewriting; only the tools live at /opt/kiln/bin in the image.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "kiln/compile/executor.h"
#include "kiln/config/settings.h"
#include "kiln/docker/engine.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::docker {

struct Limits {
  uint64_t memory_bytes = 4ull << 30;
  double cpus = 0;          // 0: no limit
  int64_t pids = 256;
  std::string tmpfs_size = "1g";
};

class ContainerExecutor final : public compile::Executor {
 public:
  // Connects to the engine and reads the image's IREE version labels.
  static Result<std::unique_ptr<ContainerExecutor>> create(const std::string& image, const Limits& limits);
  // From the docker_* settings.
  static Result<std::unique_ptr<ContainerExecutor>> from_settings(const config::Settings& settings);

  std::string name() const override { return "docker"; }

  // Removes the containers that kiln processes which are no longer running
  // left on this engine (labelled with their owner); never a live one's.
  // Returns their names.
  static Result<std::vector<std::string>> reap(Engine& engine);
  Result<util::ProcessResult> run(const compile::ExecRequest& request) override;

  // The toolchain as seen inside the image: tool paths under /opt/kiln/bin,
  // the IREE release, build and revision from the image's labels.
  const toolchain::Toolchain& toolchain() const { return tools_; }
  const std::string& image() const { return image_; }

 private:
  ContainerExecutor(Engine engine, std::string image, Limits limits, toolchain::Toolchain tools)
      : engine_(std::move(engine)), image_(std::move(image)), limits_(limits), tools_(std::move(tools)) {}
  nlohmann::json container_config(const compile::ExecRequest& request, const std::string& report) const;

  Engine engine_;
  std::string image_;
  Limits limits_;
  toolchain::Toolchain tools_;
  static std::atomic<int> counter_;
};

}  // namespace kiln::docker
