#include "kiln/util/fault.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace kiln::util {

void pause_at(const char* point) {
  const char* wanted = std::getenv("KILN_FAULT_PAUSE");
  if (wanted == nullptr || std::strcmp(wanted, point) != 0) return;
  if (const char* marker = std::getenv("KILN_FAULT_MARKER"); marker != nullptr && *marker != '\0') {
    // Written whole and then renamed, so a test never reads half a pid.
    std::string tmp = std::string(marker) + ".tmp";
    std::string pid = std::to_string(::getpid()) + "\n";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
      bool whole = ::write(fd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
      ::close(fd);
      if (whole) ::rename(tmp.c_str(), marker);
    }
  }
  ::raise(SIGSTOP);
}

}  // namespace kiln::util
