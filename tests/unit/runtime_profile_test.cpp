#include "kiln/runtime/profile.h"

#include <gtest/gtest.h>

namespace kiln::runtime {

// Rows as `iree-profile dispatch --format=jsonl` prints them (trimmed).
const char* kDeviceRows =
    R"({"type":"dispatch_summary","total_dispatches":200}
{"type":"dispatch_group","key":"main_dispatch_1_matmul_256x1024x4096_f32","count":100,"valid":100,"avg_ns":1200000.0,"total_ns":120000000}
{"type":"dispatch_group","key":"main_dispatch_0_matmul_256x4096x1024_f32","count":100,"valid":100,"avg_ns":600000.0,"total_ns":60000000}
{"type":"dispatch_group","key":"main_dispatch_2_elementwise_256x4096_f32","count":200,"valid":200,"avg_ns":10000.0,"total_ns":2000000}
not json
)";

TEST(RuntimeProfile, AggregatesPerCallAndOrdersByTime) {
  auto p = parse_dispatch_report(kDeviceRows, 100);
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_EQ(p->source, "device dispatch events");
  ASSERT_EQ(p->dispatches.size(), 3u);
  const auto& top = p->dispatches[0];
  EXPECT_EQ(top.name, "main_dispatch_1_matmul_256x1024x4096_f32");
  EXPECT_EQ(top.op, "matmul");
  EXPECT_EQ(top.bounds, (std::vector<int64_t>{256, 1024, 4096}));
  EXPECT_DOUBLE_EQ(top.launches_per_call, 1.0);
  EXPECT_DOUBLE_EQ(top.avg_us, 1200.0);
  EXPECT_DOUBLE_EQ(top.per_call_us, 1200.0);
  // 2 * 256 * 1024 * 4096 flops in 1.2 ms.
  EXPECT_NEAR(top.tflops, 2.0 * 256 * 1024 * 4096 / 1.2e-3 / 1e12, 1e-9);
  EXPECT_DOUBLE_EQ(p->dispatches[2].launches_per_call, 2.0);
  EXPECT_EQ(p->dispatches[2].tflops, 0);  // no flops known for elementwise
  EXPECT_NEAR(p->dispatch_ms, 1.2 + 0.6 + 0.02, 1e-9);
  double shares = 0;
  for (const auto& d : p->dispatches) shares += d.share;
  EXPECT_NEAR(shares, 1.0, 1e-9);
}

TEST(RuntimeProfile, HostRowsAndEmptyProfiles) {
  auto p = parse_dispatch_report(
      R"({"type":"host_dispatch_group","key":"main_dispatch_0_conv_32x64x64x64x3x3x3_f32","count":5,"valid":5,"total_ns":5000000})", 5);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->source, "host execution events");
  EXPECT_EQ(p->dispatches[0].op, "conv");
  EXPECT_GT(p->dispatches[0].tflops, 0);
  EXPECT_FALSE(parse_dispatch_report(R"({"type":"dispatch_summary"})", 5));
  EXPECT_EQ(flops_of("reduction", {4096, 1024}), 0);
  EXPECT_EQ(flops_of("batch_matmul", {8, 512, 512, 128}), 2.0 * 8 * 512 * 512 * 128);
}

TEST(RuntimeProfile, BenchmarkFunctionsNameTheirDispatch) {
  EXPECT_EQ(dispatch_of_benchmark("main_dispatch_0_cuda_nvptx_fb_main_dispatch_0_matmul_256x4096x1024_f32"),
            "main_dispatch_0_matmul_256x4096x1024_f32");
  EXPECT_EQ(dispatch_of_benchmark("main_dispatch_12_embedded_elf_x86_64_main_dispatch_12_elementwise"),
            "main_dispatch_12_elementwise");
  EXPECT_EQ(dispatch_of_benchmark("something_else"), "something_else");
}

}  // namespace kiln::runtime

namespace kiln::runtime {

// iree-benchmark-module --benchmark_repetitions=3 --benchmark_format=json,
// as the pinned release prints it (names shortened): the first repetition
// of a cold module is an outlier, and the aggregates are not repetitions.
TEST(RuntimeProfile, ADispatchTimeIsTheMedianRepetitionSummedOverFunctions) {
  auto row = [](const std::string& fn, const char* type, double us, const std::string& suffix = "") {
    return nlohmann::json{{"name", "BM_" + fn + "/process_time/real_time" + suffix},
                          {"run_name", "BM_" + fn + "/process_time/real_time"},
                          {"run_type", type}, {"real_time", us}, {"time_unit", "us"}};
  };
  nlohmann::json report = {{"benchmarks", nlohmann::json::array({
      row("d1", "iteration", 4428.3), row("d1", "iteration", 4.8), row("d1", "iteration", 3.2),
      row("d1", "aggregate", 1478.8, "_mean"), row("d1", "aggregate", 4.8, "_median")})}};
  auto one = dispatch_report_ms(report);
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_NEAR(*one, 0.0048, 1e-9);
  report["benchmarks"].push_back(row("d2", "iteration", 10));
  EXPECT_NEAR(*dispatch_report_ms(report), 0.0148, 1e-9);
  EXPECT_FALSE(dispatch_report_ms(nlohmann::json{{"benchmarks", nlohmann::json::array()}}));
  EXPECT_FALSE(dispatch_report_ms(nlohmann::json::array()));
}

}  // namespace kiln::runtime
