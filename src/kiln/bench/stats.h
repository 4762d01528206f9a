// Latency statistics over per-invocation samples, and the regression check
// behind `kiln bench --compare`.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

namespace kiln::bench {

struct Stats {
  size_t samples = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0, stddev = 0;  // milliseconds
  double runs_per_second = 0;   // 1000 / mean, times concurrency
  double items_per_second = 0;  // runs_per_second * batch
  std::string spread_warning;   // set when the spread is too wide to trust
};

// Percentiles interpolate linearly between order statistics.
double percentile(std::vector<double> sorted_samples, double p);

Stats compute(std::vector<double> samples_ms, int batch = 1, int concurrency = 1);

struct Regression {
  bool regressed = false;
  std::string summary;  // one line per compared figure
};

// Compares the p50 (and mean) of two `kiln bench` JSON reports; a regression
// is NEW slower than BASE by more than threshold_percent.
Result<Regression> compare_reports(const nlohmann::json& base, const nlohmann::json& current, double threshold_percent);

}  // namespace kiln::bench
