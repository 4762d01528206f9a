// The three forms of a `kiln bench` report: JSON for tools and CI gates, a
// Markdown table for people and pull requests, and an SVG chart.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/bench/stats.h"

namespace kiln::bench {

struct Report {
  std::string module;
  std::string function;
  std::string device;
  int warmup = 0;
  int batch = 1;
  int concurrency = 1;
  std::vector<double> samples_ms;
  Stats stats;
};

nlohmann::json to_json(const Report& r);
std::string to_markdown(const Report& r);
// A histogram of the samples with the percentiles marked.
std::string to_svg(const Report& r);

}  // namespace kiln::bench
