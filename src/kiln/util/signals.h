// SIGINT/SIGTERM handling. The handler only records the signal; long-running
// loops (child processes, waits) poll interrupted() and unwind normally, so
// destructors remove temporary files and kill child process groups.
#pragma once

namespace kiln::util {

void install_interrupt_handlers();
// The signal that interrupted kiln, or 0.
int interrupted();

}  // namespace kiln::util
