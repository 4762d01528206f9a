// The service's log: one line per event on stderr, with a UTC timestamp.
#pragma once

#include <string>

namespace kiln::serve {

// Workers, the lease thread and the HTTP threads log at once: each line is
// formatted first and written whole, under a lock, so lines never interleave.
void log(const std::string& line);

}  // namespace kiln::serve
