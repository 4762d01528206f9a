// Dispatch-level tuning: each distinct executable of a program is tuned on
// its own. The compiler dumps one benchmark program per executable
// (--iree-hal-dump-executable-benchmarks-to); each candidate configuration
// of that executable compiles only this small program, with the
// configuration substituted by name, and is timed alone. Executables are
// keyed by a digest of their configured text with their own name taken out,
// so identical executables (across layers, across programs) are tuned once
// and their winner applies to each of them under its own name.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "kiln/compile/fallback.h"
#include "kiln/tune/bundle.h"
#include "kiln/util/error.h"

namespace kiln::tune {

namespace fs = std::filesystem;

// The executable's digest: SHA-256 of its text with every whole-word
// occurrence of its name replaced by a placeholder (exports and functions
// are named after their executable).
std::string executable_digest(const std::string& text, const std::string& name);

// The text with every whole-word occurrence of executable name `from`
// (also as the prefix of an export name, "main_dispatch_1_matmul_...") set
// to `to`; "main_dispatch_1" inside "main_dispatch_12" is left alone.
std::string rename_executable(const std::string& text, const std::string& from, const std::string& to);

// The name of the hal.executable a dumped benchmark program (or
// configuration) defines, "" when there is none: the one reader of it.
using compile::executable_name;

// Reads a folder of dumped benchmark programs: executable name -> file.
Result<std::map<std::string, fs::path>> benchmark_sources(const fs::path& dir);

// How many candidates each of `wanted` executables may keep so that their
// sum stays within `budget`: an equal share, what one executable leaves
// unused going to the others (every executable keeps at least one).
std::vector<size_t> share_budget(const std::vector<size_t>& wanted, size_t budget);

// One executable's outcome in round 1: its untuned time and its best
// candidate (empty id when none beat it by `margin`, a fraction).
struct DispatchWinner {
  std::string digest;
  std::string baseline_id, best_id;
  double baseline_ms = 0, best_ms = 0;
};
std::vector<DispatchWinner> dispatch_winners(const Bundle& bundle, const Results& results, double margin = 0.02);

// What a bundle asks of the measuring host, bounded before anything runs:
// the number of whole-program and dispatch measurements and their timed
// repetitions, and at least how many seconds of timed runs that is.
struct MeasurePlan {
  size_t programs = 0, dispatches = 0;
  int program_repetitions = 3, dispatch_repetitions = 5;
  double program_min_seconds = 0.2, dispatch_min_seconds = 0.02;
  double timed_seconds() const;
  std::string describe() const;
};
MeasurePlan measure_plan(const Bundle& bundle, int program_repetitions, double program_min_seconds,
                         int dispatch_repetitions, double dispatch_min_seconds);

}  // namespace kiln::tune
