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

}  // namespace

Result<ProcessResult> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail(Code::kInternal, "run_process: empty argv");
  Pipe out, err;
  if (::pipe2(out.fds, O_CLOEXEC) != 0 || ::pipe2(err.fds, O_CLOEXEC) != 0) {
    return fail(Code::kResourceExhausted, errno_text("pipe2", errno));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out.fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fds[1], STDERR_FILENO);
  if (spec.cwd) posix_spawn_file_actions_addchdir_np(&actions, spec.cwd->c_str());

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> argv_strings = spec.argv;
  std::vector<std::string> env_strings = merged_environment(spec.env_overrides);
  auto argv = c_strings(argv_strings);
  auto envp = c_strings(env_strings);

  auto started = Clock::now();
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
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
  int cancelled_by = 0;
  bool cancelled = false;
  while (out.fds[0] >= 0 || err.fds[0] >= 0) {
    if ((cancelled_by = interrupted()) != 0) break;
    if ((cancelled = spec.cancel && spec.cancel->load())) break;
    if (Clock::now() >= deadline) {
      result.timed_out = true;
      break;
    }
    pollfd fds[2] = {{out.fds[0], POLLIN, 0}, {err.fds[0], POLLIN, 0}};
    // Wake at least every 100 ms to notice signals and the deadline.
    int n = ::poll(fds, 2, 100);
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    if (fds[0].revents) drain(out.fds[0], result.out, spec.max_capture);
    if (fds[1].revents) drain(err.fds[0], result.err, spec.max_capture);
  }
  if (result.timed_out || cancelled_by || cancelled) ::kill(-pid, SIGKILL);

  int status = 0;
  struct rusage usage = {};
  while (true) {
    pid_t waited = ::wait4(pid, &status, 0, &usage);
    if (waited == pid) break;
    if (waited < 0 && errno != EINTR) return fail(Code::kInternal, errno_text("wait4", errno));
    // A signal arrived while the child still runs: make sure it ends.
    if ((cancelled_by = interrupted()) != 0) ::kill(-pid, SIGKILL);
  }
  // Grandchildren left in the group (a linker the compiler started) go too.
  ::kill(-pid, SIGKILL);

  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  result.peak_rss_kib = usage.ru_maxrss;
  if (WIFEXITED(status)) result.exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.term_signal = WTERMSIG(status);
  if (cancelled_by) {
    return fail(Code::kCancelled, std::string("interrupted by ") + ::strsignal(cancelled_by) +
                                      "; stopped " + spec.argv[0]);
  }
  if (cancelled) return fail(Code::kCancelled, "cancelled; stopped " + spec.argv[0]);
  return result;
}

std::string describe_outcome(const ProcessResult& result) {
  if (result.timed_out) return "ran past its time limit and was killed";
  if (result.term_signal) {
    return "crashed (killed by signal " + std::to_string(result.term_signal) + ", " +
           ::strsignal(result.term_signal) + ")";
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
