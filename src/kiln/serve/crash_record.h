// Which jobs were being compiled when `kiln serve` died of a fatal signal
// of its own (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT). Compilers run in
// child processes, so such a crash is kiln's own code failing on what one
// job brought; that job is failed with the reason at the next start instead
// of being run again to crash the service again. A SIGKILL (OOM killer,
// operator, lost host) leaves no record: those jobs are re-queued.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace kiln::serve {

namespace fs = std::filesystem;

// Installs the handlers (once per process); the record goes to `file`.
void install_crash_record(const fs::path& file);

// Gives the calling thread an alternate signal stack, so the handler runs
// after a stack overflow too. Call at the start of every worker thread.
void prepare_thread_for_crash_record();

// Marks a job as being compiled by this thread until the guard ends.
class CrashSlot {
 public:
  explicit CrashSlot(const std::string& job_id);
  ~CrashSlot();
  CrashSlot(const CrashSlot&) = delete;
  CrashSlot& operator=(const CrashSlot&) = delete;

 private:
  int slot_ = -1;
};

struct Crash {
  int signal = 0;
  std::vector<std::string> jobs;
};

// Reads and removes the record a crash left, if any.
std::optional<Crash> take_crash_record(const fs::path& file);

}  // namespace kiln::serve
