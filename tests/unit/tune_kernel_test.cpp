#include "kiln/tune/kernel.h"

#include <filesystem>
#include <regex>

#include <unistd.h>

#include <gtest/gtest.h>

#include "kiln/tuning/database.h"
#include "kiln/util/file.h"
#include "kiln/util/subprocess.h"
#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

// Configured executables as iree-compile 3.13 dumps them for cuda:h100
// (--iree-hal-dump-executable-configurations-to), from the bench models.
Executable load(const std::string& name) {
  auto text = util::read_file(std::filesystem::path(KILN_SOURCE_DIR) / "tests/unit/data/executables" / name);
  EXPECT_TRUE(text) << name;
  auto exe = parse_executable(text ? *text : "");
  EXPECT_TRUE(exe) << (exe ? "" : exe.error().message);
  return exe ? *exe : Executable{};
}

// The value list of the PTX's kiln_args initializer.
std::string args_of(const std::string& ptx) {
  std::smatch m;
  std::regex args(R"(\.global \.align 8 \.u64 kiln_args\[9\] = \{([^}]*)\};)");
  return std::regex_search(ptx, m, args) ? m[1].str() : "";
}

TEST(TuneKernel, ABf16MatmulWithARoundedResultGetsBothKernels) {
  if (!kernels_available()) GTEST_SKIP() << "built without nvcc";
  Executable exe = load("gemm_bf16_matmul.mlir");
  auto kernels = kernels_for(exe, "sm_80");
  ASSERT_TRUE(kernels) << kernels.error().message;
  ASSERT_EQ(kernels->size(), 3u);
  const auto& narrow = (*kernels)[0];
  EXPECT_EQ(narrow.id, "kernel");
  EXPECT_EQ(narrow.workgroup_size, (std::vector<int64_t>{128, 1, 1}));
  EXPECT_TRUE(narrow.root.empty()) << "the compiler's own launch has 128 threads";
  EXPECT_NE(narrow.summary.find("bf16 -> bf16"), std::string::npos) << narrow.summary;
  // Named after the export, shape and operand places written in, the
  // build-time name and placeholder gone.
  EXPECT_NE(narrow.ptx.find(".entry " + exe.function + "("), std::string::npos);
  EXPECT_EQ(narrow.ptx.find("kiln_gemm"), std::string::npos);
  EXPECT_EQ(args_of(narrow.ptx), "4096, 4096, 4096, 0, 0, 1, 0, 2, 0");
  EXPECT_EQ(util::split(narrow.ptx, '\n').size() > 100, true);
  EXPECT_NE(narrow.ptx.find(".version 7.6"), std::string::npos) << "PTX ISA of IREE 3.13's own kernels";

  const auto& deep = (*kernels)[1];
  EXPECT_EQ(deep.id, "kernel-k64");
  EXPECT_EQ(deep.workgroup_size, (std::vector<int64_t>{128, 1, 1}));
  EXPECT_EQ(field(deep.root, "workgroup"), "[128, 128, 0]");
  EXPECT_EQ(field(deep.root, "reduction"), "[0, 0, 8]");
  const auto& wide = (*kernels)[2];
  EXPECT_EQ(wide.id, "kernel-wide");
  EXPECT_EQ(wide.workgroup_size, (std::vector<int64_t>{256, 1, 1}));
  EXPECT_EQ(field(wide.root, "workgroup"), "[128, 256, 0]");
  EXPECT_EQ(field(wide.root, "subgroup"), "[4, 8, 0]");
  EXPECT_EQ(field(wide.root, "reduction"), "[0, 0, 8]");
  EXPECT_EQ(field(wide.root, "mma_kind"), field(exe.root, "mma_kind")) << "the rest of the compiler's configuration stays";
  EXPECT_NE(wide.ptx.find("%dynamic_smem_size"), std::string::npos);
}

TEST(TuneKernel, F16InputsSharingOneBindingAndAnF32ResultAreFound) {
  if (!kernels_available()) GTEST_SKIP() << "built without nvcc";
  // --precision f16-inputs: one dispatch converts both operands into one
  // buffer; the matmul reads them at offsets 0 and 32 MiB of binding 0.
  Executable exe = load("gemm_f16_inputs_matmul.mlir");
  auto kernels = kernels_for(exe, "sm_80");
  ASSERT_TRUE(kernels) << kernels.error().message;
  ASSERT_FALSE(kernels->empty());
  const auto& k = kernels->front();
  EXPECT_EQ(args_of(k.ptx), "4096, 4096, 4096, 0, 0, 0, 33554432, 1, 0");
  EXPECT_NE(k.summary.find("f16 -> f32"), std::string::npos) << k.summary;
  // Two bindings: the entry takes two pointers.
  std::smatch m;
  std::string ptx = k.ptx;
  ASSERT_TRUE(std::regex_search(ptx, m, std::regex(R"(\.entry [\w]+\(([^)]*)\))")));
  EXPECT_EQ(util::split(m[1].str(), ',').size(), 2u) << m[1].str();
}

TEST(TuneKernel, DispatchesThatComputeMoreOrOtherwiseAreRefusedWithAReason) {
  if (!kernels_available()) GTEST_SKIP() << "built without nvcc";
  // A bias add fused after the matmul: the kernel would drop it.
  auto bias = kernels_for(load("mlp_f16_inputs_bias.mlir"), "sm_90");
  ASSERT_FALSE(bias);
  EXPECT_NE(bias.error().message.find("more than a matmul"), std::string::npos) << bias.error().message;

  Executable exe = load("gemm_bf16_matmul.mlir");
  auto with = [&](const std::string& from, const std::string& to) {
    Executable e = exe;
    size_t at = e.text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) e.text.replace(at, from.size(), to);
    return kernels_for(e, "sm_80");
  };
  auto reason = [](const Result<std::vector<KernelChoice>>& r) { return r ? std::string("accepted") : r.error().message; };
  // The right-hand side read transposed.
  EXPECT_NE(reason(with("affine_map<(d0, d1, d2) -> (d2, d1)>", "affine_map<(d0, d1, d2) -> (d1, d2)>")).find("row-major"),
            std::string::npos);
  // An element-wise op other than the rounding.
  EXPECT_NE(reason(with("arith.truncf %", "math.tanh %")).find("more than a matmul"), std::string::npos);
  // A shape the tiles do not divide.
  Executable odd = exe;
  odd.bounds = {4096, 4096, 4000};
  EXPECT_FALSE(kernels_for(odd, "sm_80"));
  // Not CUDA, not a matmul, other element types.
  Executable other = exe;
  other.op_kind = "batch_matmul";
  EXPECT_NE(reason(kernels_for(other, "sm_80")).find("not a plain matmul"), std::string::npos);
  other = exe;
  other.element = "f32";
  EXPECT_NE(reason(kernels_for(other, "sm_80")).find("element types"), std::string::npos);
  EXPECT_NE(reason(with("target(<\"cuda\"", "target(<\"rocm\"")).find("not a CUDA dispatch"), std::string::npos);
}

TEST(TuneKernel, OnlyMmaDispatchesWhoseShapeFitsGetTheWideKernel) {
  if (!kernels_available()) GTEST_SKIP() << "built without nvcc";
  Executable exe = load("gemm_bf16_matmul.mlir");
  exe.family = Family::kGpuSimt;
  auto kernels = kernels_for(exe, "sm_80");
  ASSERT_TRUE(kernels);
  ASSERT_EQ(kernels->size(), 1u);
  EXPECT_EQ(kernels->front().id, "kernel");
}

TEST(TuneKernel, AHopperTargetAlsoGetsTheWgmmaKernel) {
  if (!hopper_kernels_available()) GTEST_SKIP() << "built without an nvcc that builds for sm_90a";
  Executable exe = load("gemm_bf16_matmul.mlir");
  auto kernels = kernels_for(exe, "sm_90");
  ASSERT_TRUE(kernels) << kernels.error().message;
  ASSERT_EQ(kernels->size(), 4u);
  const auto& k = kernels->back();
  EXPECT_EQ(k.id, "kernel-wgmma");
  EXPECT_EQ(k.workgroup_size, (std::vector<int64_t>{256, 1, 1}));
  // The configuration whose launch gives the kernel its 3 dynamic stages.
  EXPECT_EQ(field(k.root, "workgroup"), "[64, 512, 0]");
  EXPECT_EQ(field(k.root, "subgroup"), "[4, 8, 0]");
  EXPECT_EQ(field(k.root, "reduction"), "[0, 0, 8]");
  EXPECT_EQ(field(k.root, "mma_kind"), field(exe.root, "mma_kind"));
  EXPECT_NE(k.summary.find("wgmma"), std::string::npos) << k.summary;
  EXPECT_NE(k.ptx.find(".entry " + exe.function + "("), std::string::npos);
  EXPECT_EQ(k.ptx.find("kiln_gemm"), std::string::npos);
  EXPECT_EQ(args_of(k.ptx), "4096, 4096, 4096, 0, 0, 1, 0, 2, 0");
  EXPECT_NE(k.ptx.find(".target sm_90a"), std::string::npos);
  EXPECT_NE(k.ptx.find(".version 8.0"), std::string::npos) << "the oldest PTX ISA with wgmma";
  EXPECT_NE(k.ptx.find("wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16"), std::string::npos);
  // sm_90a is the name of the same target.
  auto a = kernels_for(exe, "sm_90a");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->back().id, "kernel-wgmma");

  // f16 inputs in one binding, an f32 result: the f16 variant with two parameters.
  auto f16 = kernels_for(load("gemm_f16_inputs_matmul.mlir"), "sm_90");
  ASSERT_TRUE(f16) << f16.error().message;
  EXPECT_EQ(f16->back().id, "kernel-wgmma");
  EXPECT_NE(f16->back().ptx.find("wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16"), std::string::npos);
  EXPECT_EQ(args_of(f16->back().ptx), "4096, 4096, 4096, 0, 0, 0, 33554432, 1, 0");

  // A shape its configuration's 512 columns do not divide (3840 = 7.5 x
  // 512, but 30 x 128 and 15 x 256), or a SIMT dispatch: the others only.
  std::string text = exe.text;
  for (size_t at = text.find("4096"); at != std::string::npos; at = text.find("4096", at)) text.replace(at, 4, "3840");
  auto narrow = parse_executable(text);
  ASSERT_TRUE(narrow) << narrow.error().message;
  EXPECT_EQ(narrow->bounds, (std::vector<int64_t>{3840, 3840, 3840}));
  auto n = kernels_for(*narrow, "sm_90");
  ASSERT_TRUE(n) << n.error().message;
  EXPECT_EQ(n->size(), 3u);
  for (const auto& c : *n) EXPECT_NE(c.id, "kernel-wgmma");
  Executable simt = exe;
  simt.family = Family::kGpuSimt;
  auto s = kernels_for(simt, "sm_90");
  ASSERT_TRUE(s);
  for (const auto& c : *s) EXPECT_NE(c.id, "kernel-wgmma");
}

// The instantiated Hopper PTX (renamed, kiln_args written, ISA 8.0) is what
// the driver compiles at load: the ptxas that came with nvcc assembles it for
// sm_90a, with no spills and no serialized wgmma.
TEST(TuneKernel, TheWgmmaKernelsAssembleForHopper) {
  if (!hopper_kernels_available()) GTEST_SKIP() << "built without an nvcc that builds for sm_90a";
  std::filesystem::path ptxas = std::filesystem::path(KILN_NVCC).parent_path() / "ptxas";
  if (!std::filesystem::exists(ptxas)) GTEST_SKIP() << "no ptxas next to " << KILN_NVCC;
  auto dir = std::filesystem::temp_directory_path() / ("kiln-ptxas-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (std::string name : {"gemm_bf16_matmul.mlir", "gemm_f16_inputs_matmul.mlir"}) {
    Executable exe = load(name);
    auto kernels = kernels_for(exe, "sm_90");
    ASSERT_TRUE(kernels) << name;
    ASSERT_EQ(kernels->back().id, "kernel-wgmma") << name;
    auto file = dir / "kernel.ptx";
    ASSERT_TRUE(util::write_file_atomic(file, kernels->back().ptx));
    auto r = util::run_process({{ptxas.string(), "-arch=sm_90a", "-v", file.string(), "-o", (dir / "kernel.cubin").string()}});
    ASSERT_TRUE(r) << r.error().message;
    const std::string report = r->out + r->err;
    EXPECT_TRUE(r->ok()) << name << ": " << report;
    EXPECT_NE(report.find("Compiling entry function '" + exe.function + "' for 'sm_90a'"), std::string::npos) << report;
    EXPECT_NE(report.find("0 bytes spill stores"), std::string::npos) << name << ": " << report;
    EXPECT_EQ(report.find("serialized"), std::string::npos) << name << ": " << report;
  }
  std::filesystem::remove_all(dir);
}

TEST(TuneKernel, OtherTargetsNeverGetTheWgmmaKernel) {
  if (!kernels_available()) GTEST_SKIP() << "built without nvcc";
  Executable exe = load("gemm_bf16_matmul.mlir");
  for (std::string arch : {"sm_80", "sm_86", "sm_89", "sm_100", "sm_120", ""}) {
    auto kernels = kernels_for(exe, arch);
    ASSERT_TRUE(kernels) << arch;
    EXPECT_EQ(kernels->size(), 3u) << arch;
    for (const auto& k : *kernels) {
      EXPECT_NE(k.id, "kernel-wgmma") << arch;
      EXPECT_EQ(k.ptx.find("sm_90a"), std::string::npos) << arch;
    }
  }
}

TEST(TuneKernel, AKilnWithoutItsKernelsOffersNone) {
  if (kernels_available()) GTEST_SKIP() << "built with nvcc: its kernels are there";
  EXPECT_FALSE(hopper_kernels_available());
  auto r = kernels_for(load("gemm_bf16_matmul.mlir"), "sm_90");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("without nvcc"), std::string::npos) << r.error().message;
}

TEST(TuneKernel, KernelObjectsAreStoredUnderTheirOwnNames) {
  EXPECT_TRUE(tuning::is_kernel_object("main_dispatch_0.ptx"));
  EXPECT_FALSE(tuning::is_kernel_object("main_dispatch_0"));
  EXPECT_EQ(tuning::config_file_name("main_dispatch_0"), "main_dispatch_0.mlir");
  EXPECT_EQ(tuning::config_file_name("main_dispatch_0.ptx"), "main_dispatch_0.ptx");
  // Which file a configuration is stored in changes the module: the digest sees it.
  EXPECT_NE(tuning::module_digest({}, {{"main_dispatch_0", "x"}}), tuning::module_digest({}, {{"main_dispatch_0.ptx", "x"}}));
}

}  // namespace
}  // namespace kiln::tune
