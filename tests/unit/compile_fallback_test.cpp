#include "kiln/compile/fallback.h"

#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::compile {
namespace {

namespace fs = std::filesystem;

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
  EXPECT_EQ(match_fallback(kDistribute, target::Backend::kRocm, {}), f) << "AMD GPUs fail the same way";
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

TEST(Fallback, TheFailingExecutablesAreReadFromTheDiagnostics) {
  // As iree-compile 3.13 prints a failing dispatch ("see current operation"), shortened.
  std::string err = std::string(kDistribute) +
                    "layers.py:118:14: note: see current operation: \n"
                    "\"func.func\"() <{function_type = () -> (), sym_name = \"main_dispatch_2_matmul_1024x2304x768_bf16\"}> ({\n"
                    "layers.py:88:13: note: see current operation: \n"
                    "\"func.func\"() <{function_type = () -> (), sym_name = \"main_dispatch_11_batch_matmul_48x64x256x256_bf16\"}> ({\n"
                    "\"func.func\"() <{function_type = () -> (), sym_name = \"main_dispatch_2_matmul_1024x2304x768_bf16\"}> ({\n"
                    "\"func.func\"() <{sym_name = \"helper\"}> ({\n"
                    "\"func.func\"() <{sym_name = \"forward_dispatch_3\"}> ({\n";
  EXPECT_EQ(failing_executables(err),
            (std::vector<std::string>{"main_dispatch_2", "main_dispatch_11", "forward_dispatch_3"}));
  EXPECT_TRUE(failing_executables(kDistribute).empty());
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

TEST(Fallback, FallbacksAndRepairsShareNoName) {
  std::set<std::string_view> names;
  for (const auto& f : fallbacks()) names.insert(f.name);
  for (const auto& r : config_repairs()) {
    EXPECT_TRUE(names.insert(r.name).second) << r.name;
    EXPECT_FALSE(r.backends.empty()) << r.name;
    EXPECT_NE(r.repair, nullptr) << r.name;
    EXPECT_FALSE(r.why.empty()) << r.name;
  }
  EXPECT_TRUE(may_repair_configs(target::Backend::kCuda));
  EXPECT_TRUE(may_repair_configs(target::Backend::kRocm));
  EXPECT_FALSE(may_repair_configs(target::Backend::kCpu));
}

// What IREE 3.13 configured for the softmax of a bf16 LM head over GPT-2's
// vocabulary (cuda, sm_80), shortened: only the sum (%8) has tiles.
constexpr const char* kSoftmax = R"(hal.executable public @main_dispatch_4 {
  hal.executable.variant public @cuda_nvptx_fb target(<"cuda", "cuda-nvptx-fb", {}>) {
    builtin.module {
      func.func @main_dispatch_4_softmax_4x128x50257xf32_generic() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [32, 1, 1] subgroup_size = 32>} {
        %6 = linalg.generic {indexing_maps = [#map, #map1], iterator_types = ["parallel", "parallel", "reduction"]} ins(%2 : tensor<4x128x50257xbf16>) outs(%5 : tensor<4x128xf32>) {
        ^bb0(%in: bf16, %out: f32):
        } -> tensor<4x128xf32>
        %8 = linalg.generic {indexing_maps = [#map, #map1, #map1], iterator_types = ["parallel", "parallel", "reduction"]} ins(%2, %6 : tensor<4x128x50257xbf16>, tensor<4x128xf32>) outs(%7 : tensor<4x128xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 29], thread = [1, 4, 0], workgroup = [1, 128, 0]}>} {
        ^bb0(%in: bf16, %in_1: f32, %out: f32):
        } -> tensor<4x128xf32>
        %9 = linalg.generic {indexing_maps = [#map, #map1, #map1, #map], iterator_types = ["parallel", "parallel", "parallel"]} ins(%2, %6, %8 : tensor<4x128x50257xbf16>, tensor<4x128xf32>, tensor<4x128xf32>) outs(%3 : tensor<4x128x50257xbf16>) {
        ^bb0(%in: bf16, %in_1: f32, %in_2: f32, %out: bf16):
        } -> tensor<4x128x50257xbf16>
        return
      }
    }
  }
}
)";

constexpr const char* kTiles =
    "lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 29], thread = [1, 4, 0], workgroup = [1, 128, 0]}>";

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST(ConfigRepair, EveryReductionGetsTheConfiguredReductionsTiles) {
  auto fixed = tile_every_reduction(kSoftmax);
  ASSERT_TRUE(fixed);
  EXPECT_EQ(count(*fixed, kTiles), 2u) << *fixed;
  // The maximum (%6) has them now, on its own line; the element-wise
  // normalization (%9, no reduction) is left to the compiler.
  size_t max_line = fixed->find("%6 = linalg.generic");
  size_t end = fixed->find('\n', max_line);
  EXPECT_NE(fixed->substr(max_line, end - max_line).find(std::string("attrs =  {") + kTiles + "} {"), std::string::npos);
  size_t norm = fixed->find("%9 = linalg.generic");
  EXPECT_EQ(fixed->substr(norm, fixed->find('\n', norm) - norm).find("lowering_config"), std::string::npos);
  // Repaired once is repaired for good.
  EXPECT_FALSE(tile_every_reduction(*fixed));
  EXPECT_EQ(executable_name(*fixed), "main_dispatch_4");
}

TEST(ConfigRepair, OtherPipelinesAndLoneReductionsAreLeftAlone) {
  std::string vector_distribute = kSoftmax;
  size_t at = vector_distribute.find("TileAndFuse");
  vector_distribute.replace(at, std::string("TileAndFuse").size(), "VectorDistribute");
  EXPECT_FALSE(tile_every_reduction(vector_distribute));
  // Without a configured reduction over the same loops there are no tiles to give.
  std::string other_loops = kSoftmax;
  const std::string sum_loops = R"(["parallel", "parallel", "reduction"]} ins(%2, %6)";
  at = other_loops.find(sum_loops);
  ASSERT_NE(at, std::string::npos);
  other_loops.replace(at, sum_loops.size(), R"(["reduction", "parallel", "reduction"]} ins(%2, %6)");
  EXPECT_FALSE(tile_every_reduction(other_loops)) << other_loops;
  EXPECT_EQ(executable_name("no executable here"), "");
}

TEST(ConfigRepair, DumpedConfigurationsAreRepairedIntoTheSubstitutionFolder) {
  auto dir = util::TempDir::create(util::temp_root(), "kiln-repair-");
  ASSERT_TRUE(dir);
  fs::path dump = dir->path() / "dump", out = dir->path() / "executable-configs";
  fs::create_directories(dump);
  ASSERT_TRUE(util::write_file_atomic(dump / "configured_module_main_dispatch_4.mlir", kSoftmax));
  std::string fine = kSoftmax;
  fine.replace(fine.find("@main_dispatch_4 {"), 18, "@main_dispatch_7 {");
  fine.replace(fine.find("TileAndFuse"), 11, "VectorDistribute");
  ASSERT_TRUE(util::write_file_atomic(dump / "configured_module_main_dispatch_7.mlir", fine));

  EXPECT_TRUE(repair_dumped_configs(dump, out, target::Backend::kCpu).empty());
  EXPECT_FALSE(fs::exists(out));
  auto repaired = repair_dumped_configs(dump, out, target::Backend::kCuda);
  ASSERT_EQ(repaired.size(), 1u);
  EXPECT_EQ(repaired["tile-every-reduction"], std::vector<std::string>{"main_dispatch_4"});
  auto written = util::read_file(out / "main_dispatch_4.mlir");
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, *tile_every_reduction(kSoftmax));
  EXPECT_FALSE(fs::exists(out / "main_dispatch_7.mlir")) << "only repaired executables are substituted";
}

TEST(ConfigRepair, ShortRowsKeepTheCompilersChoice) {
  // Attention's softmax over 1024 keys builds as the compiler chose it.
  std::string short_rows = kSoftmax;
  for (size_t at = short_rows.find("50257"); at != std::string::npos; at = short_rows.find("50257", at)) {
    short_rows.replace(at, 5, "1024");
  }
  EXPECT_FALSE(tile_every_reduction(short_rows));
  // A row of unknown length is repaired: the repair is always correct.
  std::string unknown = kSoftmax;
  size_t at = unknown.find("ins(%2 : tensor<4x128x50257xbf16>) outs(%5");
  unknown.replace(at, std::string("ins(%2 : tensor<4x128x50257xbf16>)").size(), "ins(%2 : tensor<?x128x?xbf16>)");
  EXPECT_TRUE(tile_every_reduction(unknown));
}

}  // namespace
}  // namespace kiln::compile
