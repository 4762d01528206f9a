// Runs another program: argv straight to posix_spawn (no shell), stdin from
// /dev/null, stdout and stderr captured without deadlocking, the child in its
// own process group so a timeout or an interrupt kills everything it started.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::util {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is a path, not looked up in PATH
  std::optional<std::filesystem::path> cwd;
  std::vector<std::string> env_overrides;  // "NAME=value", added to our environment
  std::chrono::milliseconds timeout{0};    // 0: no limit
  size_t max_capture = 64 << 20;           // bytes kept of each stream
  const std::atomic<bool>* cancel = nullptr;  // set by another thread: stop the child (Code::kCancelled)
};

struct ProcessResult {
  int exit_status = -1;     // valid when term_signal == 0
  int term_signal = 0;      // the signal that ended the child, if any
  bool timed_out = false;   // kiln killed it at the deadline
  std::string out;
  std::string err;
  double wall_seconds = 0;
  long peak_rss_kib = 0;    // largest resident set of the child or its children
  bool out_of_memory = false;  // killed by a memory limit (a container's)
  std::string limit_note;      // which limit, for the message

  bool ok() const { return !timed_out && term_signal == 0 && exit_status == 0; }
};

// Fails only when the program could not be started or kiln was interrupted
// (Code::kCancelled, after killing and reaping the child). A child that exits
// non-zero, crashes or times out is a successful run with that outcome.
Result<ProcessResult> run_process(const ProcessSpec& spec);

// The first executable `program` in $PATH, or an empty path.
std::filesystem::path find_program(const std::string& program);

// "killed by signal 11, Segmentation fault" / "exited with status 2" / ...
std::string describe_outcome(const ProcessResult& result);

}  // namespace kiln::util
