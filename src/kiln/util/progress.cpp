#include "kiln/util/progress.h"

#include <unistd.h>

#include <cmath>

#include <fmt/format.h>

namespace kiln::util {

std::string format_duration(double seconds) {
  if (seconds < 0) return "?";
  auto s = static_cast<long long>(std::llround(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

double eta_seconds(size_t done, size_t total, double elapsed_seconds) {
  if (done == 0) return -1;
  if (done >= total) return 0;
  return elapsed_seconds / static_cast<double>(done) * static_cast<double>(total - done);
}

std::string progress_line(size_t done, size_t total, double elapsed_seconds, size_t width) {
  size_t filled = total == 0 ? width : std::min(width, done * width / total);
  return fmt::format("[{}{}] {:>{}}/{}  elapsed {}  ETA {}", std::string(filled, '#'), std::string(width - filled, '.'),
                     done, std::to_string(total).size(), total, format_duration(elapsed_seconds),
                     format_duration(eta_seconds(done, total, elapsed_seconds)));
}

bool stderr_is_terminal() { return isatty(STDERR_FILENO) == 1; }

Progress::Progress(std::ostream& out, std::string prefix, size_t total, bool terminal)
    : out_(out), prefix_(std::move(prefix)), total_(total), terminal_(terminal),
      start_(std::chrono::steady_clock::now()), last_plain_(start_) {
  if (terminal_) draw("");
}

Progress::~Progress() { finish(); }

double Progress::elapsed() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::draw(const std::string& note) {
  std::string text = prefix_ + progress_line(done_, total_, elapsed());
  if (!note.empty()) text += "  " + (note.size() > 60 ? note.substr(0, 57) + "..." : note);
  // Carriage return and clear-to-end-of-line: the bar is redrawn in place.
  out_ << "\r" << text << "\x1b[K" << std::flush;
  drawn_ = true;
}

void Progress::advance(const std::string& note, bool always) {
  std::lock_guard<std::mutex> lock(mutex_);
  ++done_;
  if (terminal_) {
    draw(note);
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (always || done_ == total_ || now - last_plain_ >= std::chrono::seconds(10)) {
    last_plain_ = now;
    double e = elapsed();
    out_ << prefix_ << fmt::format("[{}/{}] {}  (elapsed {}, ETA {})", done_, total_, note, format_duration(e),
                                   format_duration(eta_seconds(done_, total_, e)))
         << "\n" << std::flush;
  }
}

void Progress::line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (terminal_ && drawn_) out_ << "\r\x1b[K";
  out_ << prefix_ << text << "\n";
  if (terminal_ && !finished_) draw("");
  out_ << std::flush;
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (terminal_ && drawn_) out_ << "\n" << std::flush;
}

}  // namespace kiln::util
