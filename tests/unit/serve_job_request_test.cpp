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
  auto done = [](const char* target) {
    return nlohmann::json{{"target", target}, {"ok", true}, {"module", "m"}, {"metadata", "j"}, {"sha256", "00"}};
  };
  nlohmann::json cpu = done("cpu"), h100 = done("cuda:h100");
  EXPECT_TRUE(check_succeeded(r, {cpu, h100}));
  EXPECT_FALSE(check_succeeded(r, {cpu}));
  EXPECT_FALSE(check_succeeded(r, nlohmann::json::array()));
  EXPECT_FALSE(check_succeeded(r, {cpu, cpu}));
  EXPECT_FALSE(check_succeeded(r, {cpu, {{"target", "cuda:h100"}, {"ok", false}}}));
  EXPECT_EQ(check_succeeded(r, {cpu}).error().code, Code::kFailedPrecondition);
}

TEST(UnitResult, WhatIsWrittenReadsBack) {
  UnitResult u;
  u.target = "cuda:h100";
  u.ok = true;
  u.module = "model.cuda-sm_90.vmfb";
  u.metadata = "model.cuda-sm_90.json";
  u.sha256 = std::string(64, 'a');
  u.size_bytes = 1234;
  u.cache_hit = true;
  u.cache_source = "shared";
  u.binding = {{"b", 8}};
  nlohmann::json j = unit_json(u, "job1");
  EXPECT_EQ(j["links"]["module"], "/v1/jobs/job1/artifacts/model.cuda-sm_90.vmfb");
  auto back = read_units(nlohmann::json::array({j}));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ((*back)[0].module, u.module);
  EXPECT_EQ((*back)[0].sha256, u.sha256);
  EXPECT_EQ((*back)[0].cache_source, "shared");
  EXPECT_EQ((*back)[0].binding, u.binding);
  UnitResult failed;
  failed.target = "cpu";
  failed.error_code = "compile_failed";
  failed.error_message = "model:3:7: error";
  auto f = read_units(nlohmann::json::array({unit_json(failed, "job1")}));
  ASSERT_TRUE(f);
  EXPECT_FALSE((*f)[0].ok);
  EXPECT_EQ((*f)[0].error_message, "model:3:7: error");
}

TEST(UnitResult, TheReaderNamesTheBadField) {
  auto r = read_units(nlohmann::json::array({{{"target", "cpu"}, {"ok", true}, {"module", 3}}}));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "at /0/module: not a string");
  EXPECT_FALSE(read_units(nlohmann::json::object()));
}

}  // namespace kiln::serve
