#include "kiln/target/target.h"

#include <gtest/gtest.h>

namespace kiln::target {

bool has_flag(const Target& t, const std::string& flag) {
  return std::find(t.flags.begin(), t.flags.end(), flag) != t.flags.end();
}

std::string error_of(const std::string& spec) {
  auto t = resolve(spec);
  EXPECT_FALSE(t) << spec << " should be refused";
  return t ? "" : t.error().message;
}

TEST(Target, CudaByComputeCapabilityAndByName) {
  auto a100 = *resolve("cuda:a100");
  EXPECT_EQ(a100.arch, "sm_80");
  EXPECT_EQ(a100.slug, "cuda-sm_80");
  EXPECT_TRUE(has_flag(a100, "--iree-hal-target-device=cuda"));
  EXPECT_TRUE(has_flag(a100, "--iree-cuda-target=sm_80"));
  EXPECT_EQ(resolve("cuda:SM_89")->arch, "sm_89");
  EXPECT_EQ(resolve("cuda:rtx4090")->arch, "sm_89");
  EXPECT_EQ(resolve("cuda:sm_120")->runtime_device, "cuda");
}

TEST(Target, HopperIsBuiltAsSm80PtxAndSaysSo) {
  for (const char* spec : {"cuda:h100", "cuda:sm_90", "cuda:H200", "cuda:gh200"}) {
    auto t = resolve(spec);
    ASSERT_TRUE(t) << spec;
    EXPECT_EQ(t->arch, "sm_90");
    EXPECT_EQ(t->slug, "cuda-sm_90");
    EXPECT_TRUE(has_flag(*t, "--iree-cuda-target=sm_80"));
    EXPECT_NE(t->note.find("JIT"), std::string::npos);
  }
}

TEST(Target, UnsupportedCudaNamesTheNearestWorkingChoice) {
  EXPECT_NE(error_of("cuda:b200").find("no CUDA target for sm_100"), std::string::npos);
  EXPECT_NE(error_of("cuda:b200").find("cuda:sm_90"), std::string::npos);
  EXPECT_NE(error_of("cuda:sm_52").find("cuda:sm_60"), std::string::npos);
  EXPECT_NE(error_of("cuda:h10").find("did you mean cuda:h100"), std::string::npos);
  EXPECT_NE(error_of("cuda").find("expected cuda:"), std::string::npos);
}

TEST(Target, CpuHostAndCross) {
  auto host = *resolve("cpu");
  EXPECT_EQ(host.cpu, "host");
  EXPECT_EQ(host.slug, "cpu-host");
  EXPECT_TRUE(has_flag(host, "--iree-llvmcpu-target-cpu=host"));
  EXPECT_EQ(host.runtime_device, "local-task");
  auto arm = *resolve("cpu:arm64:neoverse-v2");
  EXPECT_EQ(arm.arch, "aarch64");
  EXPECT_EQ(arm.slug, "cpu-aarch64-neoverse-v2");
  EXPECT_TRUE(has_flag(arm, "--iree-llvmcpu-target-triple=aarch64-unknown-linux-gnu"));
  auto x86 = *resolve("cpu:x86_64");
  EXPECT_EQ(x86.cpu, "generic");
  EXPECT_EQ(x86.slug, "cpu-x86_64");
}

TEST(Target, CpuNamesCannotEscapeTheOutputFolder) {
  EXPECT_NE(error_of("cpu:x86_64:../../etc").find("not a CPU name"), std::string::npos);
  EXPECT_NE(error_of("cpu:riscv").find("unknown CPU architecture"), std::string::npos);
}

TEST(Target, VulkanMetalRocm) {
  EXPECT_TRUE(has_flag(*resolve("vulkan:rdna3"), "--iree-vulkan-target=rdna3"));
  EXPECT_TRUE(has_flag(*resolve("metal:macos"), "--iree-metal-target-platform=macos"));
  EXPECT_TRUE(has_flag(*resolve("rocm:gfx942"), "--iree-rocm-target=gfx942"));
  EXPECT_TRUE(has_flag(*resolve("rocm:gfx942"), "--iree-hal-target-device=hip"));
  EXPECT_NE(error_of("metal:ios").find("metal:macos"), std::string::npos);
  EXPECT_NE(error_of("rocm:gfx943").find("rocm:gfx942"), std::string::npos);
  EXPECT_NE(error_of("vulkan:rdna5").find("vulkan:rdna"), std::string::npos);
}

TEST(Target, UnknownFamilySuggests) {
  EXPECT_NE(error_of("cdua:a100").find("did you mean 'cuda'"), std::string::npos);
  EXPECT_NE(error_of("tpu:v5").find("kiln targets"), std::string::npos);
}

TEST(Target, EveryListedChoiceResolves) {
  for (const auto& family : supported_targets()) {
    std::string prefix = family.syntax.substr(0, family.syntax.find_first_of(":["));
    for (const auto& choice : family.choices) {
      std::string value = choice.substr(0, choice.find(' '));
      std::string spec = prefix == "cpu" ? (value == "host" ? "cpu" : "cpu:" + value) : prefix + ":" + value;
      EXPECT_TRUE(resolve(spec)) << spec;
    }
  }
}

}  // namespace kiln::target
