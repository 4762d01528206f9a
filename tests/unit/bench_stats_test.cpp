#include "kiln/bench/stats.h"

#include <gtest/gtest.h>

#include "kiln/bench/report.h"

namespace kiln::bench {

TEST(Stats, PercentilesInterpolate) {
  std::vector<double> s = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_DOUBLE_EQ(percentile(s, 50), 5.5);
  EXPECT_DOUBLE_EQ(percentile(s, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(s, 100), 10);
  EXPECT_NEAR(percentile(s, 90), 9.1, 1e-12);
}

TEST(Stats, SummaryAndThroughput) {
  std::vector<double> s(100, 2.0);
  s[99] = 2.1;
  Stats st = compute(s, 8, 2);
  EXPECT_EQ(st.samples, 100u);
  EXPECT_DOUBLE_EQ(st.min, 2.0);
  EXPECT_DOUBLE_EQ(st.max, 2.1);
  EXPECT_NEAR(st.runs_per_second, 2 * 1000 / 2.001, 1e-6);
  EXPECT_NEAR(st.items_per_second, 8 * st.runs_per_second, 1e-6);
  EXPECT_TRUE(st.spread_warning.empty());
}

TEST(Stats, WideSpreadWarns) {
  std::vector<double> s;
  for (int i = 0; i < 50; ++i) s.push_back(i % 2 ? 1.0 : 3.0);
  EXPECT_NE(compute(s).spread_warning.find("too wide"), std::string::npos);
  EXPECT_NE(compute({1, 2, 3}).spread_warning.find("only 3 samples"), std::string::npos);
}

TEST(Stats, CompareFlagsRegressionsOverTheThreshold) {
  nlohmann::json base = {{"stats", {{"p50_ms", 10.0}, {"mean_ms", 10.0}}}};
  nlohmann::json slower = {{"stats", {{"p50_ms", 11.0}, {"mean_ms", 10.2}}}};
  EXPECT_TRUE(compare_reports(base, slower, 5)->regressed);
  EXPECT_FALSE(compare_reports(base, slower, 15)->regressed);
  EXPECT_FALSE(compare_reports(slower, base, 5)->regressed) << "faster is never a regression";
  EXPECT_FALSE(compare_reports(base, nlohmann::json::object(), 5));
}

TEST(Report, FormsAgree) {
  Report r{"m.vmfb", "main", "local-task", 5, 1, 1, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, compute({1, 2, 3, 4, 5, 6, 7, 8, 9, 10})};
  auto j = to_json(r);
  EXPECT_EQ(j["stats"]["p50_ms"], 5.5);
  EXPECT_NE(to_markdown(r).find("| 10 | 1.0000 ms | 5.5000 ms |"), std::string::npos) << to_markdown(r);
  std::string svg = to_svg(r);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("p99"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

}  // namespace kiln::bench
