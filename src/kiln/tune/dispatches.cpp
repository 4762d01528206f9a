#include "kiln/tune/dispatches.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

bool digit(char c) { return c >= '0' && c <= '9'; }

// Whether `name` at `pos` stands on its own: nothing of a longer name before
// it, and no digit after it (an export "NAME_matmul_..." is still NAME's).
bool name_at(const std::string& text, size_t pos, size_t len) {
  if (pos > 0 && util::is_word_char(text[pos - 1])) return false;
  return pos + len >= text.size() || !digit(text[pos + len]);
}

}  // namespace

std::string rename_executable(const std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  std::string out;
  out.reserve(text.size());
  size_t at = 0;
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + from.size())) {
    if (!name_at(text, pos, from.size())) continue;
    out.append(text, at, pos - at);
    out += to;
    at = pos + from.size();
  }
  out.append(text, at, std::string::npos);
  return out;
}

std::string executable_digest(const std::string& text, const std::string& name) {
  return util::sha256_hex(rename_executable(text, name, "\x01" "executable" "\x01"));
}

Result<std::map<std::string, fs::path>> benchmark_sources(const fs::path& dir) {
  std::map<std::string, fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.path().extension() != ".mlir") continue;
    auto text = KILN_TRY(util::read_file(e.path()));
    std::string name = executable_name(text);
    if (!name.empty()) out.emplace(name, e.path());
  }
  if (ec) return fail(Code::kInternal, fmt::format("cannot read {}: {}", dir.string(), ec.message()));
  return out;
}

std::vector<size_t> share_budget(const std::vector<size_t>& wanted, size_t budget) {
  std::vector<size_t> given(wanted.size(), 0);
  std::vector<size_t> open;
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (wanted[i] > 0) {
      given[i] = 1;  // every executable keeps its most promising candidate
      open.push_back(i);
    }
  }
  size_t used = open.size();
  // Hand out the rest one round at a time, in order, until the budget or
  // every wish is spent.
  while (used < budget && !open.empty()) {
    std::vector<size_t> still;
    for (size_t i : open) {
      if (used >= budget) break;
      if (given[i] < wanted[i]) {
        ++given[i];
        ++used;
      }
      if (given[i] < wanted[i]) still.push_back(i);
    }
    open = std::move(still);
  }
  return given;
}

std::vector<DispatchWinner> dispatch_winners(const Bundle& bundle, const Results& results, double margin) {
  std::map<std::string, DispatchWinner> by_digest;
  std::vector<std::string> order;
  for (const auto& c : bundle.candidates) {
    if (c.executable.empty()) continue;
    auto [it, fresh] = by_digest.emplace(c.executable, DispatchWinner{c.executable, "", "", 0, 0});
    if (fresh) order.push_back(c.executable);
    const Measurement* m = results.find(c.id);
    if (!m || m->status != "ok" || m->latency_ms <= 0) continue;
    DispatchWinner& w = it->second;
    if (c.configs.empty()) {
      w.baseline_id = c.id;
      w.baseline_ms = m->latency_ms;
    } else if (w.best_id.empty() || m->latency_ms < w.best_ms) {
      w.best_id = c.id;
      w.best_ms = m->latency_ms;
    }
  }
  std::vector<DispatchWinner> out;
  for (const auto& d : order) {
    DispatchWinner w = by_digest[d];
    // Without a measured baseline nothing is known to be faster.
    if (w.baseline_id.empty() || w.best_ms >= w.baseline_ms * (1 - margin)) {
      w.best_id.clear();
      w.best_ms = 0;
    }
    out.push_back(w);
  }
  return out;
}

double MeasurePlan::timed_seconds() const {
  return static_cast<double>(programs) * program_repetitions * program_min_seconds +
         static_cast<double>(dispatches) * dispatch_repetitions * dispatch_min_seconds;
}

std::string MeasurePlan::describe() const {
  return fmt::format("{} whole-program candidates x ({} checked run + {} x >= {} s) + {} dispatch candidates x {} x >= {} s "
                     "= {} timed runs, at least {:.0f} s of timing",
                     programs, 1, program_repetitions, program_min_seconds, dispatches, dispatch_repetitions,
                     dispatch_min_seconds, programs * (program_repetitions + 1) + dispatches * dispatch_repetitions,
                     timed_seconds());
}

MeasurePlan measure_plan(const Bundle& bundle, int program_repetitions, double program_min_seconds,
                         int dispatch_repetitions, double dispatch_min_seconds) {
  MeasurePlan p;
  p.program_repetitions = program_repetitions;
  p.program_min_seconds = program_min_seconds;
  p.dispatch_repetitions = dispatch_repetitions;
  p.dispatch_min_seconds = dispatch_min_seconds;
  for (const auto& c : bundle.candidates) (c.executable.empty() ? p.programs : p.dispatches)++;
  return p;
}

}  // namespace kiln::tune
