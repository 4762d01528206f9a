// Deterministic kill points for kiln's fault-injection tests. Where a test
// must SIGKILL kiln at an exact step (between two renames, say), the code
// names the step with pause_at("name"). With KILN_FAULT_PAUSE=name in the
// environment, kiln writes its pid to the file KILN_FAULT_MARKER (when set)
// and stops itself with SIGSTOP; the test sees the marker and kills it.
// Without the variable a point costs one getenv and does nothing. It exists
// for tests only (docs/reliability.md).
#pragma once

namespace kiln::util {

void pause_at(const char* point);

}  // namespace kiln::util
