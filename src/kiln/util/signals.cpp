#include "kiln/util/signals.h"

#include <atomic>
#include <csignal>

namespace kiln::util {
namespace {

// Written by the handler on whichever thread takes the signal and read by
// every thread (workers, the HTTP front, compile pools): an atomic, which a
// handler may store to because it is lock-free. A volatile sig_atomic_t is
// only safe between a handler and the thread it interrupted.
std::atomic<int> g_signal{0};
std::atomic<int> g_shutdown{0};
std::atomic<bool> g_deferred{false};
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<bool>::is_always_lock_free);

void on_signal(int sig) {
  // Deferred: the first signal is a request; the second interrupts.
  if (g_deferred.load(std::memory_order_relaxed) && g_shutdown.exchange(sig, std::memory_order_relaxed) == 0) return;
  g_signal.store(sig, std::memory_order_relaxed);
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action = {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // A closed output pipe must be an error from write(), not a silent death.
  std::signal(SIGPIPE, SIG_IGN);
}

int interrupted() { return g_signal.load(std::memory_order_relaxed); }

void defer_interrupts() { g_deferred.store(true, std::memory_order_relaxed); }

int shutdown_requested() {
  int sig = g_shutdown.load(std::memory_order_relaxed);
  return sig ? sig : interrupted();
}

}  // namespace kiln::util
