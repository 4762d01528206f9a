// Progress of a long step (compiling candidates, measuring them) on a
// stream, usually stderr. On a terminal it is one line redrawn in place: a
// bar, done/total, elapsed time and the estimated time left; elsewhere
// (a log file, CI) plain lines, at most one every few seconds unless a line
// is asked for. Safe to advance from several threads.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <ostream>
#include <string>

namespace kiln::util {

// "42s", "3m05s", "1h02m": short, for progress lines.
std::string format_duration(double seconds);

// Seconds left if the remaining items take as long as the done ones on
// average; negative when nothing is done yet (unknown).
double eta_seconds(size_t done, size_t total, double elapsed_seconds);

// "[#########...........]  12/40  elapsed 1m02s  ETA 2m40s" for a bar of
// `width` characters.
std::string progress_line(size_t done, size_t total, double elapsed_seconds, size_t width = 24);

// Whether stderr is a terminal.
bool stderr_is_terminal();

class Progress {
 public:
  Progress(std::ostream& out, std::string prefix, size_t total, bool terminal);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // One more item done; `note` says which. On a plain stream a line is
  // written when `always` is set, for the last item, or every 10 s.
  void advance(const std::string& note, bool always = false);
  // A line of its own (the bar is redrawn under it on a terminal).
  void line(const std::string& text);
  // Ends the bar's line on a terminal.
  void finish();

 private:
  void draw(const std::string& note);
  double elapsed() const;

  std::ostream& out_;
  std::string prefix_;
  size_t total_, done_ = 0;
  bool terminal_, drawn_ = false, finished_ = false;
  std::chrono::steady_clock::time_point start_, last_plain_;
  std::mutex mutex_;
};

}  // namespace kiln::util
