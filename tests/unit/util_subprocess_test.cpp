#include "kiln/util/subprocess.h"

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::util {

TEST(Subprocess, CapturesOutputAndStatus) {
  auto r = run_process({.argv = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_EQ(r->exit_status, 3);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(describe_outcome(*r), "exited with status 3");
}

TEST(Subprocess, LargeOutputOnBothStreamsDoesNotDeadlock) {
  auto r = run_process({.argv = {"/bin/sh", "-c", "head -c 3000000 /dev/zero; head -c 3000000 /dev/zero >&2"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->out.size(), 3000000u);
  EXPECT_EQ(r->err.size(), 3000000u);
}

TEST(Subprocess, StdinIsDevNull) {
  auto r = run_process({.argv = {"/bin/cat"}, .timeout = std::chrono::seconds(5)});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->ok());
  EXPECT_FALSE(r->timed_out);
}

TEST(Subprocess, TimeoutKillsTheWholeProcessGroup) {
  auto dir = TempDir::create(temp_root(), "kiln-sub-");
  ASSERT_TRUE(dir);
  auto marker = dir->path() / "grandchild-survived";
  // The grandchild would write the marker after 2 s if it were not killed.
  std::string script = "(sleep 2; touch " + marker.string() + ") & sleep 30";
  auto r = run_process({.argv = {"/bin/sh", "-c", script}, .timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(r->wall_seconds, 5.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_FALSE(fs::exists(marker));
}

TEST(Subprocess, TheDeadlineHoldsAfterTheChildClosesItsPipes) {
  // The child closes stdout and stderr, then runs on: the wait for it keeps
  // the deadline (it used to block until the child ended, 6 s later).
  auto start = std::chrono::steady_clock::now();
  auto r = run_process({.argv = {"/bin/sh", "-c", "exec >&- 2>&-; sleep 6"}, .timeout = std::chrono::milliseconds(300)});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(seconds, 2.0);
}

TEST(Subprocess, CancellationHoldsAfterTheChildClosesItsPipes) {
  std::atomic<bool> cancel{false};
  std::thread setter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = run_process({.argv = {"/bin/sh", "-c", "exec >&- 2>&-; sleep 6"}, .cancel = &cancel});
  setter.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kCancelled);
  EXPECT_LT(seconds, 2.0);
}

TEST(Subprocess, ABadWorkingFolderIsAnErrorNotAHalfSetUpChild) {
  auto r = run_process({.argv = {"/bin/true"}, .cwd = std::filesystem::path("/nonexistent/kiln/folder")});
  // A failed chdir in the child is reported as the start's error.
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("/bin/true"), std::string::npos) << r.error().message;
}

namespace {

// Whether `pid` is gone (or a zombie waiting for a reaper that is not us).
bool gone(pid_t pid) {
  // Read as a stream: /proc files have no size to map.
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  return stat[paren + 2] == 'Z';
}

}  // namespace

TEST(Subprocess, AChildDiesWithAKilledParent) {
  // A process (the "kiln") runs a long child and is killed with SIGKILL,
  // which it cannot handle: the kernel's parent-death signal ends the child.
  auto dir = TempDir::create(temp_root(), "kiln-pdeath-");
  ASSERT_TRUE(dir);
  std::string pid_file = (dir->path() / "child.pid").string();
  pid_t parent = ::fork();
  ASSERT_GE(parent, 0);
  if (parent == 0) {
    auto r = run_process({.argv = {"/bin/sh", "-c", "echo $$ > " + pid_file + ".tmp; mv " + pid_file + ".tmp " +
                                                        pid_file + "; exec sleep 60"}});
    ::_exit(r ? 0 : 1);
  }
  std::string text;
  for (int i = 0; i < 500 && text.empty(); ++i) {
    text = read_file(pid_file).value_or("");
    if (text.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_FALSE(text.empty()) << "the child never started";
  pid_t child = std::stoi(text);
  ASSERT_FALSE(gone(child));
  ::kill(parent, SIGKILL);
  int status = 0;
  ::waitpid(parent, &status, 0);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!gone(child) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  bool ended = gone(child);
  if (!ended) ::kill(child, SIGKILL);
  EXPECT_TRUE(ended) << "the child of a SIGKILLed parent still runs 2 s later";
}

TEST(Subprocess, ReportsCrashSignal) {
  auto r = run_process({.argv = {"/bin/sh", "-c", "kill -SEGV $$"}});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->term_signal, SIGSEGV);
  EXPECT_NE(describe_outcome(*r).find("signal 11"), std::string::npos);
}

TEST(Subprocess, MissingProgramIsNotFound) {
  auto r = run_process({.argv = {"/nonexistent/tool"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kNotFound);
  EXPECT_NE(r.error().message.find("/nonexistent/tool"), std::string::npos);
}

TEST(Subprocess, MeasuresPeakMemory) {
  auto r = run_process({.argv = {"/bin/sh", "-c", "true"}});
  ASSERT_TRUE(r);
  EXPECT_GT(r->peak_rss_kib, 0);
}

}  // namespace kiln::util
