// SIGINT/SIGTERM handling. The handler only records the signal; long-running
// loops (child processes, waits) poll interrupted() and unwind normally, so
// destructors remove temporary files and kill child process groups.
#pragma once

namespace kiln::util {

void install_interrupt_handlers();
// The signal that interrupted kiln, or 0.
int interrupted();

// For long-running services (`kiln serve`, `kiln worker`): from now on the
// first SIGINT/SIGTERM only asks for a shutdown (shutdown_requested()), and
// interrupted() stays 0, so running children are not killed by it: the
// service decides what to let finish and what to stop. A second signal
// interrupts as usual (children stop at once).
void defer_interrupts();
// The signal that asked a service to shut down, or 0 (interrupted() too).
int shutdown_requested();

}  // namespace kiln::util
