#include "kiln/serve/job_request.h"

#include <gtest/gtest.h>

namespace kiln::serve {

TEST(JobRequest, PlansOneUnitPerTargetAndBinding) {
  auto r = read_job_request({{"targets", {"cpu", "cuda:h100"}}, {"options", {{"bind", {{{"b", 1}}, {{"b", 2}}, {{"b", 3}}}}}}});
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->planned_units(), 6u);
  EXPECT_EQ(read_job_request({{"targets", {"cpu"}}})->planned_units(), 1u);
  EXPECT_FALSE(read_job_request({{"targets", "cpu"}}));
  EXPECT_FALSE(read_job_request(nlohmann::json::array()));
}

TEST(JobRequest, TheFirstDuplicateTargetIsNamedAndNothingMore) {
  nlohmann::json targets = nlohmann::json::array();
  for (int i = 0; i < 10000; ++i) targets.push_back("cpu");
  auto st = check_request_limits({{"targets", targets}});
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message, "at /targets/1: \"cpu\" repeats /targets/0; give each target once");
}

TEST(JobRequest, TooManyTargetsOrBindingsAreRefused) {
  nlohmann::json targets = nlohmann::json::array();
  for (size_t i = 0; i <= kMaxTargets; ++i) targets.push_back("cpu:" + std::to_string(i));
  auto st = check_request_limits({{"targets", targets}});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("at most 64 targets"), std::string::npos) << st.error().message;
  EXPECT_FALSE(check_request_limits({{"targets", {"cpu"}}, {"options", {{"bind", {{{"b", 5}}, {{"b", 5}}}}}}}));
  EXPECT_TRUE(check_request_limits({{"targets", {"cpu", "cuda:h100"}}, {"options", {{"bind", {{{"b", 5}}, {{"b", 6}}}}}}}));
}

TEST(JobRequest, SucceededMeansEveryPlannedUnitFinished) {
  auto r = *read_job_request({{"targets", {"cpu", "cuda:h100"}}});
  nlohmann::json cpu = {{"target", "cpu"}, {"ok", true}}, h100 = {{"target", "cuda:h100"}, {"ok", true}};
  EXPECT_TRUE(check_succeeded(r, {cpu, h100}));
  EXPECT_FALSE(check_succeeded(r, {cpu}));
  EXPECT_FALSE(check_succeeded(r, nlohmann::json::array()));
  EXPECT_FALSE(check_succeeded(r, {cpu, cpu}));
  EXPECT_FALSE(check_succeeded(r, {cpu, {{"target", "cuda:h100"}, {"ok", false}}}));
  EXPECT_EQ(check_succeeded(r, {cpu}).error().code, Code::kFailedPrecondition);
}

}  // namespace kiln::serve
