#include "kiln/bench/stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace kiln::bench {

double percentile(std::vector<double> s, double p) {
  if (s.empty()) return 0;
  std::sort(s.begin(), s.end());
  double rank = p / 100.0 * static_cast<double>(s.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(rank));
  size_t hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (s[hi] - s[lo]) * (rank - static_cast<double>(lo));
}

Stats compute(std::vector<double> samples, int batch, int concurrency) {
  Stats st;
  st.samples = samples.size();
  if (samples.empty()) return st;
  std::sort(samples.begin(), samples.end());
  st.min = samples.front();
  st.max = samples.back();
  st.p50 = percentile(samples, 50);
  st.p90 = percentile(samples, 90);
  st.p99 = percentile(samples, 99);
  st.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / static_cast<double>(samples.size());
  double sq = 0;
  for (double x : samples) sq += (x - st.mean) * (x - st.mean);
  st.stddev = samples.size() > 1 ? std::sqrt(sq / static_cast<double>(samples.size() - 1)) : 0;
  st.runs_per_second = st.mean > 0 ? 1000.0 / st.mean * concurrency : 0;
  st.items_per_second = st.runs_per_second * batch;
  double cv = st.mean > 0 ? st.stddev / st.mean : 0;
  double tail = st.p50 > 0 ? (st.p90 - st.p50) / st.p50 : 0;
  if (samples.size() < 10) {
    st.spread_warning = fmt::format("only {} samples: percentiles are rough; use --repetitions 50 or more", samples.size());
  } else if (cv > 0.10 || tail > 0.10) {
    st.spread_warning = fmt::format(
        "the spread is too wide to trust (coefficient of variation {:.0f}%, p90 {:.0f}% above p50): other work on "
        "the machine, frequency scaling or too little warm-up; compare medians of repeated runs",
        cv * 100, tail * 100);
  }
  return st;
}

Result<Regression> compare_reports(const nlohmann::json& base, const nlohmann::json& current, double threshold) {
  auto figure = [](const nlohmann::json& report, const char* key, const char* which) -> Result<double> {
    if (!report.contains("stats") || !report["stats"].contains(key) || !report["stats"][key].is_number()) {
      return fail(Code::kInvalidArgument, fmt::format("the {} report has no stats.{} (is it a 'kiln bench' JSON report?)", which, key));
    }
    return report["stats"][key].get<double>();
  };
  Regression r;
  std::vector<std::string> lines;
  for (const char* key : {"p50_ms", "mean_ms"}) {
    double b = KILN_TRY(figure(base, key, "base")), n = KILN_TRY(figure(current, key, "new"));
    double change = b > 0 ? (n - b) / b * 100 : 0;
    bool worse = change > threshold;
    // The gate is the median; the mean is shown for context.
    if (std::string(key) == "p50_ms") r.regressed = worse;
    lines.push_back(fmt::format("{:<8} base {:10.4f} ms  new {:10.4f} ms  {:+7.2f}%{}", key, b, n, change,
                                worse ? fmt::format("  (over the {:.1f}% threshold)", threshold) : ""));
  }
  r.summary = fmt::format("{}\n{}", lines[0], lines[1]);
  return r;
}

}  // namespace kiln::bench
