#include "kiln/cli/progress.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <iostream>

#include <fmt/format.h>
#include "kiln/util/time.h"

namespace kiln::cli {
namespace {


}  // namespace

bool stderr_is_terminal() {
  const char* term = std::getenv("TERM");
  return ::isatty(STDERR_FILENO) && term && std::string(term) != "dumb";
}

Progress::Progress(std::vector<std::string> labels, bool terminal)
    : labels_(std::move(labels)), started_at_(labels_.size()), state_(labels_.size(), 0), terminal_(terminal) {}

void Progress::started(size_t unit) {
  std::lock_guard<std::mutex> lock(mu_);
  started_at_[unit] = Clock::now();
  state_[unit] = 1;
  if (terminal_) {
    redraw_locked();
  } else {
    std::cerr << fmt::format("[{}] start   {}\n", util::utc_timestamp(), labels_[unit]);
  }
}

void Progress::finished(size_t unit, bool ok, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  state_[unit] = ok ? 2 : 3;
  ++(ok ? done_ : failed_);
  double seconds = std::chrono::duration<double>(Clock::now() - started_at_[unit]).count();
  if (terminal_) {
    clear_locked();
    std::cerr << fmt::format("{} {}  {:.2f} s{}\n", ok ? "\x1b[32mdone\x1b[0m  " : "\x1b[31mfailed\x1b[0m", labels_[unit],
                             seconds, detail.empty() ? "" : "  " + detail);
    redraw_locked();
  } else {
    std::cerr << fmt::format("[{}] {} {}  {:.2f} s{}\n", util::utc_timestamp(), ok ? "done  " : "failed", labels_[unit], seconds,
                             detail.empty() ? "" : "  " + detail);
  }
}

void Progress::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  if (terminal_) redraw_locked();
}

void Progress::close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (terminal_) clear_locked();
}

void Progress::clear_locked() {
  if (drawn_lines_ == 0) return;
  std::cerr << fmt::format("\x1b[{}F\x1b[J", drawn_lines_);
  drawn_lines_ = 0;
}

void Progress::redraw_locked() {
  clear_locked();
  std::string block;
  size_t lines = 0;
  auto now = Clock::now();
  for (size_t i = 0; i < labels_.size(); ++i) {
    if (state_[i] != 1) continue;
    block += fmt::format("  {:6.1f} s  {}\n", std::chrono::duration<double>(now - started_at_[i]).count(), labels_[i]);
    ++lines;
  }
  size_t total = labels_.size(), finished = done_ + failed_;
  const int width = 30;
  int filled = total ? static_cast<int>(width * finished / total) : width;
  block += fmt::format("[{}{}] {}/{} done{}\n", std::string(filled, '#'), std::string(width - filled, '-'), finished,
                       total, failed_ ? fmt::format(", {} failed", failed_) : "");
  ++lines;
  std::cerr << block << std::flush;
  drawn_lines_ = lines;
}

}  // namespace kiln::cli
