#include "kiln/tune/executable.h"

#include <algorithm>
#include <map>

#include <set>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "kiln/tune/space.h"

namespace kiln::tune {

// Shaped like what iree-compile 3.13 writes with
// --iree-hal-dump-executable-configurations-to (trimmed to what kiln reads).
const char* kSimt = R"(hal.executable public @main_dispatch_0 {
  hal.executable.variant public @cuda_nvptx_fb target(<"cuda", "cuda-nvptx-fb", {iree_codegen.target_info = #iree_gpu.target<arch = "sm_80", features = "+ptx76", wgp = <compute = fp32, storage = b32, subgroup = shuffle|arithmetic, dot = dp4xi8toi32, mma = [<NV_MMA_SYNC_F32_16x8x16_F16>, <NV_MMA_SYNC_F32_16x8x16_BF16>, <NV_WMMA_F32_16x16x16_F16>], subgroup_size_choices = [32], max_workgroup_sizes = [1024, 1024, 1024], max_thread_count_per_workgroup = 1024, max_workgroup_memory_bytes = 166912, max_workgroup_counts = [2147483647, 65535, 65535]>>}>) {
    hal.executable.export public @main_dispatch_0_matmul_256x4096x1024_f32 ordinal(0) layout(#hal.pipeline.layout<bindings = [#hal.pipeline.binding<storage_buffer>]>) count(%arg0: !hal.device) -> (index, index, index) {
    }
    builtin.module {
      func.func @main_dispatch_0_matmul_256x4096x1024_f32() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [32, 8, 1] subgroup_size = 32, {gpu_pipeline_options = #iree_gpu.pipeline_options<no_reduce_shared_memory_bank_conflicts = true>}>} {
        %9 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%4, %5 : tensor<256x1024xf32>, tensor<1024x4096xf32>) outs(%8 : tensor<256x4096xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 32], thread = [1, 16, 0], workgroup = [32, 128, 1]}>} {
        }
        return
      }
    }
  }
}
)";

const char* kMma = R"(hal.executable public @main_dispatch_0 {
  hal.executable.variant public @cuda_nvptx_fb target(<"cuda", "cuda-nvptx-fb", {iree_codegen.target_info = #iree_gpu.target<arch = "sm_80", wgp = <mma = [<NV_MMA_SYNC_F32_16x8x16_F16>, <NV_MMA_SYNC_F32_16x8x16_BF16>], subgroup_size_choices = [32], max_workgroup_sizes = [1024, 1024, 1024], max_thread_count_per_workgroup = 1024, max_workgroup_memory_bytes = 166912>>}>) {
    hal.executable.export public @main_dispatch_0_matmul_4096x4096x4096_bf16xbf16xf32 ordinal(0) layout(#hal.pipeline.layout<bindings = []>) {
    }
    builtin.module {
      func.func @main_dispatch_0_matmul_4096x4096x4096_bf16xbf16xf32() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [128, 1, 1] subgroup_size = 32>} {
        %9 = linalg.generic {iterator_types = ["parallel", "parallel", "reduction"]} ins(%3, %4 : tensor<4096x4096xbf16>, tensor<4096x4096xbf16>) outs(%8 : tensor<4096x4096xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{convert_acc_gemm, mma_kind = #iree_gpu.mma_layout<NV_MMA_SYNC_F32_16x8x16_BF16>, promote_operands = [0, 1], reduction = [0, 0, 2], subgroup = [4, 4, 0], workgroup = [128, 64, 0]}>} {
        }
      }
    }
  }
}
)";

const char* kCpu = R"(hal.executable public @main_dispatch_1 {
  hal.executable.variant public @embedded_elf_x86_64 target(<"llvm-cpu", "embedded-elf-x86_64", {cpu = "znver4"}>) {
    hal.executable.export public @main_dispatch_1_matmul_64x256x128_f32 ordinal(0) layout(#hal.pipeline.layout<bindings = []>) {
    }
    builtin.module {
      func.func @main_dispatch_1_matmul_64x256x128_f32() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<DoubleTilingExpert>, {enable_loop_peeling}>} {
        %5 = linalg.fill {lowering_config = #iree_cpu.lowering_config<cache_parallel = [64, 64], vector_common_parallel = [8, 8]>} ins(%cst : f32) outs(%4 : tensor<64x256xf32>) -> tensor<64x256xf32>
        %6 = linalg.matmul {lowering_config = #iree_cpu.lowering_config<cache_parallel = [64, 64, 0], distribution = [64, 64, 0], vector_common_parallel = [8, 8, 0], vector_reduction = [0, 0, 8]>} ins(%2, %3 : tensor<64x128xf32>, tensor<128x256xf32>) outs(%5 : tensor<64x256xf32>) -> tensor<64x256xf32>
      }
    }
  }
}
)";

// The MLP's second matmul under --iree-dispatch-creation-split-matmul-reduction=4:
// four partial products of 256x1024 over 1024-long slices of the reduction.
const char* kSplitK = R"(hal.executable public @main_dispatch_2 {
  hal.executable.variant public @cuda_nvptx_fb target(<"cuda", "cuda-nvptx-fb", {iree_codegen.target_info = #iree_gpu.target<arch = "sm_80", features = "+ptx76", wgp = <compute = fp32, storage = b32, subgroup = shuffle|arithmetic, dot = dp4xi8toi32, mma = [<NV_MMA_SYNC_F32_16x8x16_F16>], subgroup_size_choices = [32], max_workgroup_sizes = [1024, 1024, 1024], max_thread_count_per_workgroup = 1024, max_workgroup_memory_bytes = 166912, max_workgroup_counts = [2147483647, 65535, 65535]>>}>) {
    hal.executable.export public @main_dispatch_2_matmul_like_4x256x1024x1024_f32 ordinal(0) layout(#hal.pipeline.layout<bindings = [#hal.pipeline.binding<storage_buffer>]>) count(%arg0: !hal.device) -> (index, index, index) {
    }
    builtin.module {
      func.func @main_dispatch_2_matmul_like_4x256x1024x1024_f32() attributes {translation_info = #iree_codegen.translation_info<pipeline = #iree_gpu.pipeline<TileAndFuse> workgroup_size = [32, 8, 1] subgroup_size = 32, {gpu_pipeline_options = #iree_gpu.pipeline_options<no_reduce_shared_memory_bank_conflicts = true, use_igemm_convolution = false>}>} {
        %7 = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2, d3) -> (d1, d0, d3)>, affine_map<(d0, d1, d2, d3) -> (d0, d3, d2)>, affine_map<(d0, d1, d2, d3) -> (d0, d1, d2)>], iterator_types = ["parallel", "parallel", "parallel", "reduction"]} ins(%3, %4 : tensor<256x4x1024xf32>, tensor<4x1024x1024xf32>) outs(%6 : tensor<4x256x1024xf32>) attrs =  {lowering_config = #iree_gpu.lowering_config<{reduction = [0, 0, 0, 32], thread = [1, 1, 16, 0], workgroup = [1, 32, 128, 1], promote_operands = [0, 1]}>} {
        }
        return
      }
    }
  }
}
)";

TEST(TuneExecutable, ReadsASimtContraction) {
  auto exe = parse_executable(kSimt);
  ASSERT_TRUE(exe) << exe.error().message;
  EXPECT_EQ(exe->name, "main_dispatch_0");
  EXPECT_EQ(exe->function, "main_dispatch_0_matmul_256x4096x1024_f32");
  EXPECT_EQ(exe->op_kind, "matmul");
  EXPECT_EQ(exe->bounds, (std::vector<int64_t>{256, 4096, 1024}));
  EXPECT_EQ(exe->element, "f32");
  EXPECT_EQ(exe->pipeline, "TileAndFuse");
  EXPECT_EQ(exe->family, Family::kGpuSimt);
  EXPECT_EQ(exe->workgroup_size, (std::vector<int64_t>{32, 8, 1}));
  EXPECT_EQ(field(exe->root, "workgroup"), "[32, 128, 1]");
  EXPECT_EQ(exe->limits.max_workgroup_memory, 166912);
  EXPECT_EQ(exe->limits.max_threads, 1024);
  EXPECT_EQ(exe->limits.mma.size(), 3u);
  EXPECT_EQ(exe->limits.mma[1], "NV_MMA_SYNC_F32_16x8x16_BF16");
}

TEST(TuneExecutable, RendersAnotherConfigurationAndReadsItBack) {
  auto exe = parse_executable(kSimt);
  ASSERT_TRUE(exe);
  Fields root = exe->root;
  set_field(root, "workgroup", "[64, 64, 1]");
  set_field(root, "thread", "[4, 4, 0]");
  set_field(root, "promote_operands", "[0, 1]");
  std::string text = render(*exe, root, {16, 16, 1});
  auto again = parse_executable(text);
  ASSERT_TRUE(again);
  EXPECT_EQ(field(again->root, "workgroup"), "[64, 64, 1]");
  EXPECT_EQ(field(again->root, "thread"), "[4, 4, 0]");
  EXPECT_EQ(field(again->root, "promote_operands"), "[0, 1]");
  EXPECT_EQ(again->workgroup_size, (std::vector<int64_t>{16, 16, 1}));
  // Everything else is untouched.
  EXPECT_NE(text.find("iterator_types = [\"parallel\", \"parallel\", \"reduction\"]"), std::string::npos);
  EXPECT_EQ(text.size() - std::string(kSimt).size(), std::string("[64, 64, 1]").size() - std::string("[32, 128, 1]").size() +
                                                         std::string(", promote_operands = [0, 1]").size() +
                                                         std::string("[4, 4, 0]").size() - std::string("[1, 16, 0]").size() +
                                                         std::string("[16, 16, 1]").size() - std::string("[32, 8, 1]").size());
}

TEST(TuneExecutable, ReadsAnMmaContractionAndACpuOne) {
  auto mma = parse_executable(kMma);
  ASSERT_TRUE(mma);
  EXPECT_EQ(mma->family, Family::kGpuMma);
  EXPECT_EQ(mma->element, "bf16xbf16xf32");
  EXPECT_EQ(field(mma->root, "mma_kind"), "#iree_gpu.mma_layout<NV_MMA_SYNC_F32_16x8x16_BF16>");
  EXPECT_EQ(field(mma->root, "convert_acc_gemm"), "");
  EXPECT_EQ(describe(mma->root),
            "convert_acc_gemm NV_MMA_SYNC_F32_16x8x16_BF16 promote reduction=[0,0,2] subgroup=[4,4,0] workgroup=[128,64,0]");
  auto cpu = parse_executable(kCpu);
  ASSERT_TRUE(cpu);
  EXPECT_EQ(cpu->family, Family::kCpuTiling);
  EXPECT_FALSE(cpu->root_braced);
  EXPECT_EQ(field(cpu->root, "distribution"), "[64, 64, 0]");  // the matmul, not the fill
}

TEST(TuneExecutable, WhatKilnCannotTuneIsSaidSo) {
  EXPECT_FALSE(parse_executable("module {}"));
  // The name gives two bounds but the configuration has three loops.
  std::string odd = kSimt;
  odd.replace(odd.find("256x4096x1024"), 13, "256x4096");
  odd.replace(odd.find("256x4096x1024"), 13, "256x4096");
  auto exe = parse_executable(odd);
  ASSERT_TRUE(exe);
  EXPECT_EQ(exe->family, Family::kNone);
  EXPECT_TRUE(dispatch_candidates(*exe, 10).empty());
}

TEST(TuneSpace, SimtCandidatesRespectTheTargetAndTheProblem) {
  auto exe = parse_executable(kSimt);
  ASSERT_TRUE(exe);
  auto candidates = dispatch_candidates(*exe, 40);
  std::vector<DispatchCandidate> unpadded;
  for (const auto& c : candidates) {
    if (c.pipeline_options.empty()) unpadded.push_back(c);
  }
  ASSERT_EQ(unpadded.size(), 40u);
  std::string original = describe(exe->root);
  for (const auto& c : candidates) {
    EXPECT_NE(c.summary, original);
    auto wg = parse_ints(field(c.root, "workgroup"));
    auto th = parse_ints(field(c.root, "thread"));
    auto red = parse_ints(field(c.root, "reduction"));
    ASSERT_EQ(wg.size(), 3u);
    EXPECT_EQ(256 % wg[0], 0) << c.summary;
    EXPECT_EQ(4096 % wg[1], 0) << c.summary;
    EXPECT_EQ(1024 % red[2], 0) << c.summary;
    int64_t threads = c.workgroup_size[0] * c.workgroup_size[1] * c.workgroup_size[2];
    EXPECT_EQ(threads, (wg[0] / th[0]) * (wg[1] / th[1])) << c.summary;
    EXPECT_EQ(threads % 32, 0);
    EXPECT_LE(threads, 1024);
    if (!field(c.root, "promote_operands").empty()) {
      EXPECT_LE((wg[0] + wg[1]) * red[2] * 4, 166912);
    }
  }
  // Most promising first, and diverse: no workgroup shape fills the set.
  for (size_t i = 1; i < unpadded.size(); ++i) EXPECT_LE(unpadded[i - 1].score, unpadded[i].score);
  std::map<std::string, int> shapes;
  for (const auto& c : unpadded) ++shapes[field(c.root, "workgroup")];
  for (const auto& [shape, n] : shapes) EXPECT_LE(n, 3) << shape;
}

TEST(TuneSpace, PromotedSimtTilesAreAlsoTriedWithPaddedSharedMemory) {
  auto exe = parse_executable(kSimt);
  ASSERT_TRUE(exe);
  auto candidates = dispatch_candidates(*exe, 24);
  size_t padded = 0;
  for (const auto& c : candidates) {
    if (c.pipeline_options.empty()) continue;
    ++padded;
    EXPECT_EQ(field(c.root, "promote_operands"), "[0, 1]") << c.summary;
    EXPECT_NE(c.summary.find("pad-smem"), std::string::npos);
    ASSERT_EQ(c.pipeline_options.size(), 1u);
    EXPECT_EQ(c.pipeline_options[0].first, "no_reduce_shared_memory_bank_conflicts");
    std::string text = render(*exe, c.root, c.workgroup_size, c.pipeline_options);
    EXPECT_NE(text.find("pipeline_options<no_reduce_shared_memory_bank_conflicts = false>"), std::string::npos);
    EXPECT_EQ(text.find("no_reduce_shared_memory_bank_conflicts = true"), std::string::npos);
    auto again = parse_executable(text);
    ASSERT_TRUE(again);
    EXPECT_EQ(describe(again->root), describe(c.root));
    // Its unpadded twin is in the set too.
    bool twin = false;
    for (const auto& u : candidates) twin |= u.pipeline_options.empty() && u.summary + " pad-smem" == c.summary;
    EXPECT_TRUE(twin) << c.summary;
  }
  EXPECT_GT(padded, 0u);
  // The twins have slots of their own: every promoted tile of the `limit`
  // unpadded ones has its padded twin, however many there are.
  size_t unpadded = 0, promoted = 0;
  for (const auto& c : candidates) {
    if (!c.pipeline_options.empty()) continue;
    ++unpadded;
    promoted += !field(c.root, "promote_operands").empty();
  }
  EXPECT_EQ(unpadded, 24u);
  EXPECT_EQ(padded, promoted);
  for (size_t limit : {1u, 4u, 16u}) {
    auto few = dispatch_candidates(*exe, limit);
    size_t u = 0, p = 0, pr = 0;
    for (const auto& c : few) {
      (c.pipeline_options.empty() ? u : p) += 1;
      if (c.pipeline_options.empty()) pr += !field(c.root, "promote_operands").empty();
    }
    EXPECT_EQ(u, limit);
    EXPECT_EQ(p, pr) << limit;
  }
  // A pipeline option the file does not have is added to its options.
  std::string added = render(*exe, exe->root, exe->workgroup_size, {{"prefetch_num_stages", "2"}});
  EXPECT_NE(added.find("pipeline_options<prefetch_num_stages = 2, no_reduce_shared_memory_bank_conflicts = true>"),
            std::string::npos);
  // Where the compiler already pads (the MMA path), nothing is doubled.
  auto mma = parse_executable(kMma);
  ASSERT_TRUE(mma);
  for (const auto& c : dispatch_candidates(*mma, 30)) EXPECT_TRUE(c.pipeline_options.empty());
}

TEST(TuneSpace, SplitKIsOfferedForContractionsWithFewOutputTiles) {
  // The MLP's 256x1024x4096 matmul: 16 output tiles of 128x128, a 4096-long reduction.
  std::string narrow = kSimt;
  for (size_t at; (at = narrow.find("256x4096x1024")) != std::string::npos;) narrow.replace(at, 13, "256x1024x4096");
  auto exe = parse_executable(narrow);
  ASSERT_TRUE(exe);
  ASSERT_EQ(exe->family, Family::kGpuSimt);
  auto sets = reshaping_option_sets(target::Backend::kCuda, {*exe});
  ASSERT_EQ(sets.size(), 2u);
  EXPECT_EQ(sets[0].name, "splitK4");
  EXPECT_EQ(sets[0].flags, (std::vector<std::string>{"--iree-dispatch-creation-split-matmul-reduction=4"}));
  EXPECT_EQ(sets[1].flags, (std::vector<std::string>{"--iree-dispatch-creation-split-matmul-reduction=8"}));
  EXPECT_TRUE(reshaping_option_sets(target::Backend::kCpu, {*exe}).empty());
  // A 4096^3 GEMM has 1024 output tiles: enough work without splitting
  // (its tensor cores get the transposed right-hand side instead, below).
  auto big = parse_executable(kMma);
  ASSERT_TRUE(big);
  for (const auto& set : reshaping_option_sets(target::Backend::kCuda, {*big})) EXPECT_NE(set.name.find("rhs"), std::string::npos);
  // A reduction shorter than 1024 is kept whole.
  std::string shortk = kSimt;
  for (size_t at; (at = shortk.find("256x4096x1024")) != std::string::npos;) shortk.replace(at, 13, "256x1024x512");
  auto small = parse_executable(shortk);
  ASSERT_TRUE(small);
  EXPECT_TRUE(reshaping_option_sets(target::Backend::kCuda, {*small}).empty());
}

TEST(TuneSpace, SplitKPartialProductsGetOnePartialPerWorkgroup) {
  // On an H100 the hand-written split-K 4 winner of the MLP gave each
  // workgroup one partial product: workgroup=[1,64,32,1] thread=[1,4,4,0]
  // for this dispatch (512 workgroups), [1,128,64,1] thread=[1,8,4,0] for
  // the first matmul's, K step 32, padded.
  auto exe = parse_executable(kSplitK);
  ASSERT_TRUE(exe) << exe.error().message;
  ASSERT_EQ(exe->family, Family::kGpuSimt);
  ASSERT_EQ(exe->bounds, (std::vector<int64_t>{4, 256, 1024, 1024}));
  auto has = [](const std::vector<DispatchCandidate>& cs, const std::string& summary) {
    return std::any_of(cs.begin(), cs.end(), [&](const auto& c) { return c.summary == summary; });
  };
  // The split-K dispatches' share of --per-dispatch in round 1 is at least 4.
  auto candidates = dispatch_candidates(*exe, 4);
  std::string winner = "reduction=[0,0,0,32] thread=[1,4,4,0] workgroup=[1,64,32,1] promote";
  EXPECT_TRUE(has(candidates, winner));
  EXPECT_TRUE(has(candidates, winner + " pad-smem"));
  size_t single = 0, unpadded = 0;
  for (const auto& c : candidates) {
    if (!c.pipeline_options.empty()) continue;
    ++unpadded;
    single += parse_ints(field(c.root, "workgroup"))[0] == 1;
    // Its workgroup size matches the thread tile: 32/4 by 64/4.
    if (c.summary == winner) {
      EXPECT_EQ(c.workgroup_size, (std::vector<int64_t>{8, 16, 1}));
    }
  }
  EXPECT_EQ(unpadded, 4u);
  EXPECT_GE(single, 2u);
  // Tiles spanning several partial products keep the other slots.
  EXPECT_LT(single, unpadded);

  // The first matmul's partial products: 4 x 256 x 4096 over 256-long slices.
  std::string first = kSplitK;
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"4x256x1024x1024", "4x256x4096x256"}, {"tensor<256x4x1024xf32>", "tensor<256x4x256xf32>"},
           {"tensor<4x1024x1024xf32>", "tensor<4x256x4096xf32>"}, {"tensor<4x256x1024xf32>", "tensor<4x256x4096xf32>"}}) {
    for (size_t at; (at = first.find(from)) != std::string::npos;) first.replace(at, from.size(), to);
  }
  auto exe0 = parse_executable(first);
  ASSERT_TRUE(exe0);
  ASSERT_EQ(exe0->bounds, (std::vector<int64_t>{4, 256, 4096, 256}));
  auto c0 = dispatch_candidates(*exe0, 4);
  std::string winner0 = "reduction=[0,0,0,32] thread=[1,8,4,0] workgroup=[1,128,64,1] promote";
  EXPECT_TRUE(has(c0, winner0));
  EXPECT_TRUE(has(c0, winner0 + " pad-smem"));
}

TEST(TuneSpace, SharedMemoryLimitPrunesPromotedTiles) {
  auto exe = parse_executable(kSimt);
  ASSERT_TRUE(exe);
  exe->limits.max_workgroup_memory = 8 * 1024;
  for (const auto& c : dispatch_candidates(*exe, 200)) {
    if (field(c.root, "promote_operands").empty()) continue;
    auto wg = parse_ints(field(c.root, "workgroup"));
    auto red = parse_ints(field(c.root, "reduction"));
    EXPECT_LE((wg[0] + wg[1]) * red[2] * 4, 8 * 1024) << c.summary;
  }
}

TEST(TuneSpace, MmaCandidatesKeepTheNumericsAndFitTheSubgroups) {
  auto exe = parse_executable(kMma);
  ASSERT_TRUE(exe);
  auto candidates = dispatch_candidates(*exe, 30);
  ASSERT_FALSE(candidates.empty());
  for (const auto& c : candidates) {
    // Only bf16 inputs with f32 accumulation: never an f16 intrinsic.
    EXPECT_EQ(field(c.root, "mma_kind"), "#iree_gpu.mma_layout<NV_MMA_SYNC_F32_16x8x16_BF16>");
    if (!c.pipeline.empty()) continue;  // the VectorDistribute twins: next test
    auto wg = parse_ints(field(c.root, "workgroup"));
    auto sg = parse_ints(field(c.root, "subgroup"));
    int64_t subgroups = (wg[0] / (sg[0] * 16)) * (wg[1] / (sg[1] * 8));
    EXPECT_EQ(c.workgroup_size[0], subgroups * 32) << c.summary;
    EXPECT_EQ(field(c.root, "convert_acc_gemm"), "");
    EXPECT_EQ(field(c.root, "promote_operands"), "[0, 1]");
  }
}

TEST(TuneSpace, MmaTilesAreAlsoTriedUnderVectorDistribute) {
  auto exe = parse_executable(kMma);
  ASSERT_TRUE(exe);
  auto candidates = dispatch_candidates(*exe, 6);
  std::vector<DispatchCandidate> tiles, twins;
  for (const auto& c : candidates) (c.pipeline.empty() ? tiles : twins).push_back(c);
  ASSERT_EQ(tiles.size(), 6u);
  ASSERT_EQ(twins.size(), tiles.size());
  for (size_t i = 0; i < tiles.size(); ++i) {
    const auto& tile = tiles[i];
    const auto& twin = twins[i];
    EXPECT_EQ(twin.pipeline, "VectorDistribute");
    EXPECT_EQ(twin.summary.find("vector-distribute") != std::string::npos, true) << twin.summary;
    // The same workgroup tile and threads; the subgroup grid as a basis over
    // the three loops (16x8 intrinsic); the K step in elements (16 per step).
    auto wg = parse_ints(field(tile.root, "workgroup"));
    auto sg = parse_ints(field(tile.root, "subgroup"));
    auto red = parse_ints(field(tile.root, "reduction"));
    EXPECT_EQ(field(twin.root, "workgroup"), field(tile.root, "workgroup"));
    EXPECT_EQ(twin.workgroup_size, tile.workgroup_size);
    EXPECT_EQ(field(twin.root, "subgroup"), "");
    EXPECT_EQ(field(twin.root, "subgroup_basis"), fmt::format("[[{}, {}, 1], [0, 1, 2]]", wg[0] / (sg[0] * 16), wg[1] / (sg[1] * 8)));
    EXPECT_EQ(parse_ints(field(twin.root, "reduction"))[2], red[2] * 16);
    std::string text = render(*exe, twin.root, twin.workgroup_size, twin.pipeline_options, twin.pipeline);
    EXPECT_NE(text.find("pipeline = #iree_gpu.pipeline<VectorDistribute>"), std::string::npos);
    EXPECT_EQ(text.find("#iree_gpu.pipeline<TileAndFuse>"), std::string::npos);
    EXPECT_NE(text.find("subgroup_basis = [["), std::string::npos);
  }
}

TEST(TuneSpace, TensorCoreProgramsGetTheTransposedRhsOptionSet) {
  auto mma = parse_executable(kMma);
  ASSERT_TRUE(mma);
  auto sets = reshaping_option_sets(target::Backend::kCuda, {*mma});
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0].name, "rhs-k-major");
  ASSERT_EQ(sets[0].flags.size(), 2u);
  EXPECT_NE(sets[0].flags[0].find("iree-preprocessing-transpose-matmul-pass{input=rhs}"), std::string::npos);
  // Without this the compiler folds the transpose back into the matmul.
  EXPECT_EQ(sets[0].flags[1], "--iree-global-opt-propagate-transposes=false");
  // SIMT contractions read their operands through registers: not offered.
  auto simt = parse_executable(kSimt);
  ASSERT_TRUE(simt);
  for (const auto& set : reshaping_option_sets(target::Backend::kCuda, {*simt})) EXPECT_NE(set.name, "rhs-k-major");
  EXPECT_TRUE(reshaping_option_sets(target::Backend::kCpu, {*mma}).empty());
}

TEST(TuneSpace, RoundTwoCombinesEveryDispatchsFinalists) {
  using Combos = std::vector<std::vector<size_t>>;
  // Two split-K dispatches with three finalists each: all nine, bests first.
  auto nine = combinations({3, 3});
  ASSERT_EQ(nine.size(), 9u);
  EXPECT_EQ(nine.front(), (std::vector<size_t>{0, 0}));
  EXPECT_EQ(std::set<std::vector<size_t>>(nine.begin(), nine.end()).size(), 9u);
  EXPECT_EQ(combinations({1}), (Combos{{0}}));
  EXPECT_EQ(combinations({2, 1}), (Combos{{0, 0}, {1, 0}}));
  // Three dispatches with three each (27): the bests, then one swap at a time.
  auto swaps = combinations({3, 3, 3});
  EXPECT_EQ(swaps, (Combos{{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {0, 1, 0}, {0, 2, 0}, {0, 0, 1}, {0, 0, 2}}));
  EXPECT_TRUE(combinations({2, 0}).empty());
}

TEST(TuneSpace, CpuCandidatesStayWithinTheProblem) {
  auto exe = parse_executable(kCpu);
  ASSERT_TRUE(exe);
  auto candidates = dispatch_candidates(*exe, 6);
  ASSERT_EQ(candidates.size(), 6u);
  for (const auto& c : candidates) {
    auto dist = parse_ints(field(c.root, "distribution"));
    EXPECT_EQ(field(c.root, "cache_parallel"), field(c.root, "distribution"));
    EXPECT_LE(dist[0], 64);
    EXPECT_LE(dist[1], 256);
    EXPECT_EQ(dist[2], 0);
  }
}

TEST(TuneSpace, OptionSetsStartWithTheDefaults) {
  auto cuda = runtime_option_sets("cuda");
  ASSERT_GE(cuda.size(), 4u);
  EXPECT_TRUE(cuda[0].flags.empty());
  EXPECT_EQ(cuda[2].flags, (std::vector<std::string>{"--device_allocator=caching", "--cuda_async_allocations=false"}));
  auto hip = runtime_option_sets("hip://0");
  EXPECT_EQ(hip[2].flags[1], "--hip_async_allocations=false");
  auto cpu = runtime_option_sets("local-task");
  EXPECT_EQ(cpu.size(), 2u);
  for (auto backend : {target::Backend::kCuda, target::Backend::kCpu, target::Backend::kVulkan}) {
    auto sets = program_option_sets(backend);
    ASSERT_FALSE(sets.empty());
    EXPECT_TRUE(sets[0].flags.empty());
  }
  EXPECT_EQ(element_bytes("bf16xbf16xf32"), 2);
  EXPECT_EQ(element_bytes("f32"), 4);
}

}  // namespace kiln::tune
