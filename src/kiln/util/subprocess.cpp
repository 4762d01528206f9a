#include "kiln/util/subprocess.h"

#include <cstdlib>

#include "kiln/util/strings.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
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

// The child's side of the start, between fork and exec: only
// async-signal-safe calls. The child gets its own process group, the
// default dispositions of the signals kiln handles, and a parent-death
// signal: if kiln dies (even by SIGKILL), the kernel kills the child, so no
// compiler outlives the process that would have used its output. Failures
// are written to `report` (errno, then the step) and the child exits 127.
[[noreturn]] void child_failed(int report, int step) {
  int what[2] = {errno, step};
  ssize_t ignored = ::write(report, what, sizeof what);
  (void)ignored;
  ::_exit(127);
}

[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp, const char* cwd, int out_fd,
                             int err_fd, int report, pid_t parent) {
  auto die = [&](int step) { child_failed(report, step); };
  if (::setpgid(0, 0) != 0) die(0);
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die(1);
  // The parent may have died before the signal was armed.
  if (::getppid() != parent) ::_exit(127);
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  int in = ::open("/dev/null", O_RDONLY);
  if (in < 0 || ::dup2(in, STDIN_FILENO) < 0) die(2);
  if (::dup2(out_fd, STDOUT_FILENO) < 0 || ::dup2(err_fd, STDERR_FILENO) < 0) die(3);
  if (cwd && ::chdir(cwd) != 0) die(4);
  ::execve(path, argv, envp);
  child_failed(report, 5);
}

// Starts the child; reads its report pipe until exec closes it.
Result<pid_t> start_child(const ProcessSpec& spec, char* const* argv, char* const* envp, int out_fd, int err_fd) {
  Pipe report;
  if (::pipe2(report.fds, O_CLOEXEC) != 0) return fail(Code::kResourceExhausted, errno_text("pipe2", errno));
  std::string cwd = spec.cwd ? spec.cwd->string() : "";
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail(Code::kResourceExhausted, errno_text("fork", errno));
  if (pid == 0) exec_child(argv[0], argv, envp, spec.cwd ? cwd.c_str() : nullptr, out_fd, err_fd, report.fds[1], parent);
  // Also set here, so a kill of the group right after the start finds it.
  ::setpgid(pid, pid);
  ::close(report.fds[1]);
  report.fds[1] = -1;
  int what[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(report.fds[0], what, sizeof what)) < 0 && errno == EINTR) {
  }
  if (n <= 0) return pid;  // exec happened: the pipe closed with nothing in it
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  static const char* const kSteps[] = {"setpgid", "prctl(PR_SET_PDEATHSIG)", "open /dev/null", "dup2", "chdir",
                                       "execve"};
  const char* step = what[1] >= 0 && what[1] < 6 ? kSteps[what[1]] : "exec";
  Code code = (what[0] == ENOENT || what[0] == EACCES) && what[1] == 5 ? Code::kNotFound : Code::kInternal;
  return fail(code, "cannot start " + spec.argv[0] + ": " + errno_text(step, what[0]));
}

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
  std::vector<std::string> argv_strings = spec.argv;
  std::vector<std::string> env_strings = merged_environment(spec.env_overrides);
  auto argv = c_strings(argv_strings);
  auto envp = c_strings(env_strings);

  auto started = Clock::now();
  auto child = start_child(spec, argv.data(), envp.data(), out.fds[1], err.fds[1]);
  if (!child) return tl::unexpected(child.error());
  pid_t pid = *child;
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
