#include "kiln/util/subprocess.h"

#include <cstdlib>

#include "kiln/util/strings.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kiln/util/signals.h"

extern char** environ;

namespace kiln::util {
namespace {

using Clock = std::chrono::steady_clock;

struct Pipe {
  int fds[2] = {-1, -1};
  ~Pipe() { close_both(); }
  void close_both() {
    for (int& fd : fds) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
};

std::vector<std::string> merged_environment(const std::vector<std::string>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry(*e);
    std::string name = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const auto& o : overrides) overridden |= o.compare(0, name.size() + 1, name + "=") == 0;
    if (!overridden) env.push_back(std::move(entry));
  }
  // Later overrides of the same name win.
  for (size_t i = 0; i < overrides.size(); ++i) {
    std::string name = overrides[i].substr(0, overrides[i].find('='));
    bool later = false;
    for (size_t j = i + 1; j < overrides.size(); ++j) later |= overrides[j].compare(0, name.size() + 1, name + "=") == 0;
    if (!later) env.push_back(overrides[i]);
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

void drain(int& fd, std::string& sink, size_t limit) {
  char buf[65536];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n > 0) {
    size_t keep = std::min(static_cast<size_t>(n), limit > sink.size() ? limit - sink.size() : 0);
    sink.append(buf, keep);
  } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
    ::close(fd);
    fd = -1;
  }
}

// posix_spawn's set-up objects, destroyed on every path; each set-up call
// is checked, so a child never starts with half its redirections.
class SpawnSetup {
 public:
  SpawnSetup() {
    actions_ok_ = ::posix_spawn_file_actions_init(&actions_) == 0;
    attr_ok_ = ::posix_spawnattr_init(&attr_) == 0;
  }
  ~SpawnSetup() {
    if (actions_ok_) ::posix_spawn_file_actions_destroy(&actions_);
    if (attr_ok_) ::posix_spawnattr_destroy(&attr_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  Status prepare(const ProcessSpec& spec, int out_fd, int err_fd) {
    if (!actions_ok_ || !attr_ok_) return fail(Code::kResourceExhausted, "cannot initialise posix_spawn's attributes");
    KILN_TRY_STATUS(check(::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0),
                          "posix_spawn_file_actions_addopen"));
    KILN_TRY_STATUS(check(::posix_spawn_file_actions_adddup2(&actions_, out_fd, STDOUT_FILENO), "posix_spawn_file_actions_adddup2"));
    KILN_TRY_STATUS(check(::posix_spawn_file_actions_adddup2(&actions_, err_fd, STDERR_FILENO), "posix_spawn_file_actions_adddup2"));
    if (spec.cwd) {
      KILN_TRY_STATUS(check(::posix_spawn_file_actions_addchdir_np(&actions_, spec.cwd->c_str()),
                            "posix_spawn_file_actions_addchdir_np"));
    }
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM}) sigaddset(&defaults, sig);
    KILN_TRY_STATUS(check(::posix_spawnattr_setsigdefault(&attr_, &defaults), "posix_spawnattr_setsigdefault"));
    KILN_TRY_STATUS(check(::posix_spawnattr_setpgroup(&attr_, 0), "posix_spawnattr_setpgroup"));
    return check(::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF),
                 "posix_spawnattr_setflags");
  }

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attr() const { return &attr_; }

 private:
  static Status check(int rc, const char* what) {
    if (rc == 0) return {};
    return fail(Code::kInternal, errno_text(what, rc));
  }
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attr_;
  bool actions_ok_ = false, attr_ok_ = false;
};

// Why the wait for a child stopped early, if it did.
struct Stop {
  int signal = 0;          // kiln was interrupted by this signal
  bool cancelled = false;  // the caller's cancel flag
  bool timed_out = false;  // the deadline passed
  bool any() const { return signal || cancelled || timed_out; }
};

Stop check_stop(const ProcessSpec& spec, Clock::time_point deadline) {
  Stop stop;
  stop.signal = interrupted();
  stop.cancelled = spec.cancel && spec.cancel->load();
  stop.timed_out = Clock::now() >= deadline;
  return stop;
}

// Reads both pipes until they close, or until a stop.
Stop capture(const ProcessSpec& spec, Clock::time_point deadline, Pipe& out, Pipe& err, ProcessResult& result) {
  while (out.fds[0] >= 0 || err.fds[0] >= 0) {
    Stop stop = check_stop(spec, deadline);
    if (stop.any()) return stop;
    pollfd fds[2] = {{out.fds[0], POLLIN, 0}, {err.fds[0], POLLIN, 0}};
    // Wake at least every 100 ms to notice signals and the deadline.
    int n = ::poll(fds, 2, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents) drain(out.fds[0], result.out, spec.max_capture);
    if (fds[1].revents) drain(err.fds[0], result.err, spec.max_capture);
  }
  return {};
}

// Waits for the child with the same deadline and cancellation as the
// capture: a child that closed its pipes but runs on is still stopped.
Result<Stop> reap(pid_t pid, const ProcessSpec& spec, Clock::time_point deadline, Stop stop, int& status,
                  struct rusage& usage) {
  if (stop.any()) ::kill(-pid, SIGKILL);
  while (true) {
    pid_t waited = ::wait4(pid, &status, stop.any() ? 0 : WNOHANG, &usage);
    if (waited == pid) return stop;
    if (waited < 0 && errno != EINTR) return fail(Code::kInternal, errno_text("wait4", errno));
    if (waited == 0) {
      stop = check_stop(spec, deadline);
      if (stop.any()) {
        ::kill(-pid, SIGKILL);
      } else {
        ::usleep(2000);
      }
    }
  }
}

}  // namespace

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail(Code::kInternal, "run_process: empty argv");
  Pipe out, err;
  if (::pipe2(out.fds, O_CLOEXEC) != 0 || ::pipe2(err.fds, O_CLOEXEC) != 0) {
    return fail(Code::kResourceExhausted, errno_text("pipe2", errno));
  }
  SpawnSetup setup;
  KILN_TRY_STATUS(setup.prepare(spec, out.fds[1], err.fds[1]));

  std::vector<std::string> argv_strings = spec.argv;
  std::vector<std::string> env_strings = merged_environment(spec.env_overrides);
  auto argv = c_strings(argv_strings);
  auto envp = c_strings(env_strings);

  auto started = Clock::now();
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], setup.actions(), setup.attr(), argv.data(), envp.data());
  if (rc != 0) {
    Code code = (rc == ENOENT || rc == EACCES) ? Code::kNotFound : Code::kInternal;
    return fail(code, "cannot start " + spec.argv[0] + ": " + errno_text("posix_spawn", rc));
  }
  ::close(out.fds[1]);
  out.fds[1] = -1;
  ::close(err.fds[1]);
  err.fds[1] = -1;

  ProcessResult result;
  auto deadline = spec.timeout.count() > 0 ? started + spec.timeout : Clock::time_point::max();
  int status = 0;
  struct rusage usage = {};
  Stop stop = capture(spec, deadline, out, err, result);
  auto reaped = reap(pid, spec, deadline, stop, status, usage);
  // Grandchildren left in the group (a linker the compiler started) go too.
  ::kill(-pid, SIGKILL);
  if (!reaped) return tl::unexpected(reaped.error());
  stop = *reaped;

  result.timed_out = stop.timed_out && !stop.signal && !stop.cancelled;
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.peak_rss_kib = usage.ru_maxrss;
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  if (stop.signal) {
    return fail(Code::kCancelled, std::string("interrupted by ") + ::strsignal(stop.signal) + "; stopped " + spec.argv[0]);
  }
  if (stop.cancelled) return fail(Code::kCancelled, "cancelled; stopped " + spec.argv[0]);
  return result;
}

std::string describe_outcome(const ProcessResult& result) {
  if (result.timed_out) return "ran past its time limit and was killed";
  if (result.term_signal) {
    // No "crashed" here: callers say what crashed ("iree-compile crashed (...)").
    return "killed by signal " + std::to_string(result.term_signal) + ", " + ::strsignal(result.term_signal);
  }
  return "exited with status " + std::to_string(result.exit_status);
}

std::filesystem::path find_program(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (!path) return {};
  for (const auto& dir : split(path, ':')) {
    std::filesystem::path candidate = std::filesystem::path(dir.empty() ? "." : dir) / program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace kiln::util
