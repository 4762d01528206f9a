#include "kiln/serve/log.h"

#include <iostream>
#include <mutex>

#include "kiln/util/time.h"

namespace kiln::serve {

void log(const std::string& line) {
  static std::mutex mu;
  std::string text = "[" + util::utc_timestamp() + "] " + line + "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::cerr << text << std::flush;
}

}  // namespace kiln::serve
