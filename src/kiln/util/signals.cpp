#include "kiln/util/signals.h"

#include <csignal>

namespace kiln::util {
namespace {

volatile std::sig_atomic_t g_signal = 0;

void on_signal(int sig) { g_signal = sig; }

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

int interrupted() { return g_signal; }

}  // namespace kiln::util
