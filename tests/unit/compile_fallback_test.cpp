#include "kiln/compile/fallback.h"

#include <set>

#include <gtest/gtest.h>

namespace kiln::compile {
namespace {

// What iree-compile 3.13 printed for a bf16 dense layer (x @ w + b) built for
// cuda:sm_80, shortened.
constexpr const char* kDistribute =
    "models.py:71:11: error: 'func.func' op failed to distribute\n"
    "models.py:71:11: error: failed to run translation of source executable to target executable for backend "
    "#hal.executable.target<\"cuda\", \"cuda-nvptx-fb\">\n";

TEST(Fallback, MatchesItsSymptomOnItsBackendOnly) {
  const Fallback* f = match_fallback(kDistribute, target::Backend::kCuda, {});
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->name, "no-vector-distribution");
  EXPECT_EQ(f->flags, std::vector<std::string>{"--iree-codegen-llvmgpu-use-vector-distribution=false"});
  EXPECT_EQ(match_fallback(kDistribute, target::Backend::kCpu, {}), nullptr);
  EXPECT_EQ(match_fallback("error: something else", target::Backend::kCuda, {}), nullptr);
  EXPECT_TRUE(may_fall_back(target::Backend::kCuda));
}

TEST(Fallback, AnEntryIsTriedOnce) {
  EXPECT_EQ(match_fallback(kDistribute, target::Backend::kCuda, {"no-vector-distribution"}), nullptr);
}

TEST(Fallback, QuotesTheLineOfTheSymptom) {
  const Fallback* f = match_fallback(kDistribute, target::Backend::kCuda, {});
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(symptom_line(kDistribute, *f), "models.py:71:11: error: 'func.func' op failed to distribute");
  auto j = fallback_json(*f, symptom_line(kDistribute, *f));
  EXPECT_EQ(j["name"], "no-vector-distribution");
  EXPECT_EQ(j["table_version"], kFallbackTableVersion);
  EXPECT_EQ(j["flags"][0], "--iree-codegen-llvmgpu-use-vector-distribution=false");
}

TEST(Fallback, NamesAreUniqueAndEveryEntryHasFlagsAndAReason) {
  std::set<std::string_view> names;
  for (const auto& f : fallbacks()) {
    EXPECT_TRUE(names.insert(f.name).second) << f.name;
    EXPECT_FALSE(f.flags.empty()) << f.name;
    EXPECT_FALSE(f.symptom.empty()) << f.name;
    EXPECT_FALSE(f.why.empty()) << f.name;
  }
}

}  // namespace
}  // namespace kiln::compile
