#include "kiln/tune/dispatches.h"

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::tune {
namespace {

const char* kConfig = R"(hal.executable public @main_dispatch_1 {
  hal.executable.variant public @cuda_nvptx_fb target(<"cuda", "cuda-nvptx-fb">) {
    hal.executable.export public @main_dispatch_1_matmul_64x64x64_f32 ordinal(0) layout(#layout)
    builtin.module {
      func.func @main_dispatch_1_matmul_64x64x64_f32() {
        %0 = hal.interface.binding.subspan layout(#layout) binding(0) : memref<64x64xf32>
        return
      }
    }
  }
}
)";

std::string named(const std::string& name) { return rename_executable(kConfig, "main_dispatch_1", name); }

TEST(TuneDispatches, RenamesWholeNamesAndExportsOnly) {
  std::string text = "@main_dispatch_1 @main_dispatch_1_matmul @main_dispatch_12 @xmain_dispatch_1 main_dispatch_1::@v";
  EXPECT_EQ(rename_executable(text, "main_dispatch_1", "f_dispatch_7"),
            "@f_dispatch_7 @f_dispatch_7_matmul @main_dispatch_12 @xmain_dispatch_1 f_dispatch_7::@v");
  EXPECT_EQ(rename_executable(text, "", "x"), text);
  EXPECT_EQ(rename_executable("main_dispatch_1", "main_dispatch_1", "a"), "a");
}

TEST(TuneDispatches, IdenticalExecutablesShareADigestWhateverTheirNames) {
  std::string a = named("main_dispatch_3"), b = named("layer2_dispatch_14");
  EXPECT_EQ(executable_digest(a, "main_dispatch_3"), executable_digest(b, "layer2_dispatch_14"));
  EXPECT_EQ(executable_digest(a, "main_dispatch_3").size(), 64u);
  std::string other = a;
  other.replace(other.find("64x64xf32>"), 10, "64x32xf32>");
  EXPECT_NE(executable_digest(other, "main_dispatch_3"), executable_digest(a, "main_dispatch_3"));
  // A winner's configuration renamed for another executable of the same digest
  // is that executable's own text.
  EXPECT_EQ(rename_executable(a, "main_dispatch_3", "layer2_dispatch_14"), b);
}

TEST(TuneDispatches, ReadsTheExecutableNameOfADumpedProgram) {
  EXPECT_EQ(executable_name(kConfig), "main_dispatch_1");
  EXPECT_EQ(executable_name("module {\n  hal.executable private @main_dispatch_0 {\n"), "main_dispatch_0");
  EXPECT_EQ(executable_name("module {}"), "");
  auto dir = util::TempDir::create(util::temp_root(), "kiln-dispatches-test-");
  ASSERT_TRUE(dir);
  ASSERT_TRUE(util::write_file_atomic(dir->path() / "jit_main_dispatch_1_cuda_benchmark.mlir", kConfig));
  ASSERT_TRUE(util::write_file_atomic(dir->path() / "notes.txt", "hal.executable private @x"));
  auto sources = benchmark_sources(dir->path());
  ASSERT_TRUE(sources) << sources.error().message;
  ASSERT_EQ(sources->size(), 1u);
  EXPECT_EQ(sources->at("main_dispatch_1").filename(), "jit_main_dispatch_1_cuda_benchmark.mlir");
}

TEST(TuneDispatches, SharesTheBudgetAndPassesOnWhatIsUnused) {
  EXPECT_EQ(share_budget({10, 10, 10}, 12), (std::vector<size_t>{4, 4, 4}));
  EXPECT_EQ(share_budget({2, 20, 20}, 12), (std::vector<size_t>{2, 5, 5}));
  EXPECT_EQ(share_budget({2, 0, 3}, 100), (std::vector<size_t>{2, 0, 3}));
  EXPECT_EQ(share_budget({5, 5, 5}, 2), (std::vector<size_t>{1, 1, 1})) << "every executable keeps its best guess";
  size_t sum = 0;
  for (size_t n : share_budget({7, 3, 40, 1, 12}, 20)) sum += n;
  EXPECT_EQ(sum, 20u);
}

Candidate dispatch(const std::string& id, const std::string& digest, bool tuned) {
  Candidate c;
  c.id = id;
  c.level = "dispatch";
  c.module = "dispatches/" + id + ".vmfb";
  c.executable = digest;
  if (tuned) {
    c.configs["e"] = "configs/" + id + "/e.mlir";
    c.dispatches["e"] = "workgroup=[64,64,0]";
  }
  return c;
}

TEST(TuneDispatches, AWinnerMustBeatItsBaselineByTheMargin) {
  Bundle b;
  b.candidates = {{"reference", "reference", "", "modules/r.vmfb", {}, {}, {}},
                  dispatch("a-base", "aa", false), dispatch("a-00", "aa", true), dispatch("a-01", "aa", true),
                  dispatch("b-base", "bb", false), dispatch("b-00", "bb", true),
                  dispatch("c-00", "cc", true)};
  Results r;
  r.measurements = {{"reference", "ok", 5.0, 0, 0, ""}, {"a-base", "ok", 1.0, 0, 0, ""}, {"a-00", "ok", 0.9, 0, 0, ""},
                    {"a-01", "ok", 0.5, 0, 0, ""},     {"b-base", "ok", 1.0, 0, 0, ""}, {"b-00", "ok", 0.99, 0, 0, ""},
                    {"c-00", "ok", 0.1, 0, 0, ""}};
  auto w = dispatch_winners(b, r);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].digest, "aa");
  EXPECT_EQ(w[0].best_id, "a-01");
  EXPECT_DOUBLE_EQ(w[0].baseline_ms, 1.0);
  EXPECT_EQ(w[1].best_id, "") << "1% faster is within the noise";
  EXPECT_EQ(w[2].best_id, "") << "no baseline measured, nothing known to be faster";
  r.measurements[3].status = "failed";
  EXPECT_EQ(dispatch_winners(b, r)[0].best_id, "a-00");
  EXPECT_EQ(dispatch_winners(b, r, 0.0)[1].best_id, "b-00");
}

TEST(TuneDispatches, ThePlanCountsEveryTimedRun) {
  Bundle b;
  b.candidates = {{"reference", "reference", "", "modules/r.vmfb", {}, {}, {}},
                  {"rt-caching", "runtime", "", "modules/r.vmfb", {}, {}, {}},
                  dispatch("a-base", "aa", false), dispatch("a-00", "aa", true), dispatch("a-01", "aa", true)};
  auto p = measure_plan(b, 3, 0.2, 5, 0.02);
  EXPECT_EQ(p.programs, 2u);
  EXPECT_EQ(p.dispatches, 3u);
  EXPECT_NEAR(p.timed_seconds(), 2 * 3 * 0.2 + 3 * 5 * 0.02, 1e-9);
  EXPECT_NE(p.describe().find("23 timed runs"), std::string::npos) << p.describe();
}

}  // namespace
}  // namespace kiln::tune
