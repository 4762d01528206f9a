// Where a compiler process runs. This is one of kiln's two real seams: the
// local executor runs the tool as a child process; a container executor runs
// it inside a throw-away Docker container with only the input and the output
// folder visible.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "kiln/util/error.h"
#include "kiln/util/subprocess.h"

namespace kiln::compile {

struct ExecRequest {
  std::vector<std::string> argv;     // argv[0] as the executor's toolchain names it
  std::filesystem::path input;       // read by the tool
  std::filesystem::path output_dir;  // the only folder the tool writes
  std::chrono::milliseconds timeout{0};
  std::vector<std::filesystem::path> also_read;  // further files the tool reads
  bool gpu = false;                  // the tool needs the host's GPUs
  const std::atomic<bool>* cancel = nullptr;  // set from another thread: stop the tool
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  virtual Result<util::ProcessResult> run(const ExecRequest& request) = 0;
};

class LocalExecutor final : public Executor {
 public:
  std::string name() const override { return "local"; }
  Result<util::ProcessResult> run(const ExecRequest& request) override;
};

// The executor a setting names ("local" here; the container executor lives
// in kiln::docker, which builds on this interface).
Result<std::unique_ptr<Executor>> make_local_executor(const std::string& name);

}  // namespace kiln::compile
