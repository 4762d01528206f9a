// Progress of many compile units on stderr. On a terminal: finished units
// scroll by as they end, and a live block shows one line per running unit
// with its elapsed time and an overall bar. Elsewhere (CI logs, pipes):
// plain timestamped lines, one when a unit starts and one when it ends.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::cli {

class Progress {
 public:
  Progress(std::vector<std::string> labels, bool terminal);
  void started(size_t unit);
  void finished(size_t unit, bool ok, const std::string& detail);
  void tick();   // redraws the live block (terminal only)
  void close();  // removes the live block

 private:
  using Clock = std::chrono::steady_clock;
  void redraw_locked();
  void clear_locked();

  std::mutex mu_;
  std::vector<std::string> labels_;
  std::vector<Clock::time_point> started_at_;
  std::vector<int> state_;  // 0 waiting, 1 running, 2 done, 3 failed
  bool terminal_;
  size_t drawn_lines_ = 0;
  size_t done_ = 0, failed_ = 0;
};

// Whether stderr is a terminal that understands cursor movement.
bool stderr_is_terminal();

}  // namespace kiln::cli
