#include "kiln/serve/crash_record.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::serve {
namespace {

// Everything the handler touches is fixed-size and set up beforehand: it
// may only make async-signal-safe calls.
constexpr int kSlots = 256;
constexpr size_t kIdBytes = 64;
char g_ids[kSlots][kIdBytes];
// 0: free; 1: being written; 2: holds a running job's id.
std::atomic<int> g_state[kSlots];
char g_path[4096];
std::atomic<bool> g_installed{false};

void append(char*& at, const char* end, const char* text) {
  while (*text && at < end) *at++ = *text++;
}

void on_fatal_signal(int sig) {
  int fd = ::open(g_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    char line[32];
    char* at = line;
    append(at, line + sizeof line, "signal ");
    char digits[8];
    int n = 0;
    for (int v = sig; v > 0 && n < 7; v /= 10) digits[n++] = static_cast<char>('0' + v % 10);
    while (n > 0 && at < line + sizeof line - 1) *at++ = digits[--n];
    *at++ = '\n';
    (void)!::write(fd, line, static_cast<size_t>(at - line));
    for (int i = 0; i < kSlots; ++i) {
      if (g_state[i].load() != 2) continue;
      (void)!::write(fd, g_ids[i], ::strnlen(g_ids[i], kIdBytes - 1));
      (void)!::write(fd, "\n", 1);
    }
    ::fsync(fd);
    ::close(fd);
  }
  // The default action (a core dump, the exit status) as if unhandled.
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

}  // namespace

void install_crash_record(const fs::path& file) {
  std::string path = fs::absolute(file).string();
  if (path.size() >= sizeof g_path || g_installed.exchange(true)) return;
  std::memcpy(g_path, path.c_str(), path.size() + 1);
  prepare_thread_for_crash_record();
  struct sigaction action = {};
  action.sa_handler = on_fatal_signal;
  action.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) ::sigaction(sig, &action, nullptr);
}

namespace {

// A thread's alternate signal stack, for the thread's life. When the thread
// ends the stack is switched off before its memory is freed, so neither a
// late signal nor a sanitizer's thread teardown (which unmaps the stack it
// finds installed) touches memory that is gone.
struct AltStack {
  std::unique_ptr<char[]> memory;
  ~AltStack() {
    if (!memory) return;
    stack_t off = {};
    off.ss_flags = SS_DISABLE;
    ::sigaltstack(&off, nullptr);
  }
};

}  // namespace

void prepare_thread_for_crash_record() {
  static thread_local AltStack stack;
  if (stack.memory) return;
  constexpr size_t kSize = 64 << 10;
  stack.memory = std::make_unique<char[]>(kSize);
  stack_t ss = {};
  ss.ss_sp = stack.memory.get();
  ss.ss_size = kSize;
  ::sigaltstack(&ss, nullptr);
}

CrashSlot::CrashSlot(const std::string& job_id) {
  for (int i = 0; i < kSlots; ++i) {
    int expected = 0;
    if (!g_state[i].compare_exchange_strong(expected, 1)) continue;
    // The id is complete before the handler may read it.
    std::memset(g_ids[i], 0, kIdBytes);
    std::memcpy(g_ids[i], job_id.data(), std::min(job_id.size(), kIdBytes - 1));
    g_state[i].store(2);
    slot_ = i;
    return;
  }
}

CrashSlot::~CrashSlot() {
  if (slot_ >= 0) g_state[slot_].store(0);
}

std::optional<Crash> take_crash_record(const fs::path& file) {
  auto text = util::read_file(file);
  if (!text) return std::nullopt;
  Crash crash;
  for (const auto& line : util::split(*text, '\n')) {
    auto l = util::trim(line);
    if (l.empty()) continue;
    if (util::starts_with(l, "signal ")) {
      crash.signal = std::atoi(std::string(l.substr(7)).c_str());
    } else {
      crash.jobs.emplace_back(l);
    }
  }
  std::error_code ec;
  fs::remove(file, ec);
  return crash;
}

}  // namespace kiln::serve
