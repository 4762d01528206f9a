#include "kiln/target/target.h"

#include <cctype>

#include <algorithm>
#include <map>
#include <sys/utsname.h>

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::target {
namespace {

// ---- NVIDIA ---------------------------------------------------------------
// Compute capabilities IREE 3.13's CUDA target table knows (found by asking
// the compiler for each; sm_50/52 and sm_90..sm_110 are missing from it).
const std::vector<std::string> kCudaNative = {"sm_60", "sm_61", "sm_70", "sm_72", "sm_75", "sm_80",
                                              "sm_86", "sm_87", "sm_89", "sm_120", "sm_121"};

// Product names users deploy on, to compute capability.
const std::map<std::string, std::string> kNvidiaGpus = {
    {"p100", "sm_60"}, {"v100", "sm_70"},   {"t4", "sm_75"},      {"a100", "sm_80"},
    {"a30", "sm_80"},  {"a10", "sm_86"},    {"a10g", "sm_86"},    {"a40", "sm_86"},
    {"rtx3090", "sm_86"}, {"rtx3080", "sm_86"}, {"a6000", "sm_86"}, {"orin", "sm_87"},
    {"l4", "sm_89"},   {"l40", "sm_89"},    {"l40s", "sm_89"},    {"rtx4090", "sm_89"},
    {"rtx4080", "sm_89"}, {"h100", "sm_90"}, {"h200", "sm_90"},  {"gh200", "sm_90"},
    {"b100", "sm_100"}, {"b200", "sm_100"}, {"gb200", "sm_100"}, {"rtx5090", "sm_120"},
    {"rtx5080", "sm_120"}, {"dgx-spark", "sm_121"}};

// Hopper (sm_90) is missing from IREE 3.13's table: "--iree-cuda-target=sm_90"
// fails with "missing GPU target in #hal.executable.target" and "h100" makes
// the compiler crash. kiln builds Hopper modules with the sm_80 (A100)
// target: its PTX (ISA 7.x) is JIT-compiled to sm_90 by the driver when the
// module loads, and it uses the tensor-core instructions (mma.sync) that
// Hopper runs. Verified on an H100 (docs/gpu-verification.md).
const std::map<std::string, std::string> kCudaForwarded = {{"sm_90", "sm_80"}, {"sm_90a", "sm_80"}};

int sm_number(const std::string& arch) { return std::atoi(arch.c_str() + 3); }

Result<Target> resolve_cuda(const std::string& spec, std::string value) {
  value = util::to_lower(value);
  std::string arch = value;
  if (auto it = kNvidiaGpus.find(value); it != kNvidiaGpus.end()) arch = it->second;
  if (!util::starts_with(arch, "sm_")) {
    std::vector<std::string> names;
    for (const auto& [name, _] : kNvidiaGpus) names.push_back(name);
    names.insert(names.end(), kCudaNative.begin(), kCudaNative.end());
    std::string near = util::nearest(value, names);
    return fail(Code::kInvalidArgument,
                fmt::format("unknown NVIDIA GPU '{}' in target '{}'; {}use cuda:sm_NN or one of: {}", value, spec,
                            near.empty() ? "" : "did you mean cuda:" + near + "? ", util::join(names, ", ")));
  }
  Target t{Backend::kCuda, spec, arch, "", "cuda-" + arch, {}, "", "cuda"};
  std::string compiled_as = arch;
  if (auto it = kCudaForwarded.find(arch); it != kCudaForwarded.end()) {
    compiled_as = it->second;
    t.slug = "cuda-sm_90";
    t.note = fmt::format(
        "IREE 3.13 has no {} entry; built for {} PTX, which the CUDA driver JIT-compiles for {} on load",
        arch, compiled_as, arch);
  } else if (std::find(kCudaNative.begin(), kCudaNative.end(), arch) == kCudaNative.end()) {
    int sm = sm_number(arch);
    std::string nearest;
    if (sm < 60) {
      nearest = "cuda:sm_60 (no IREE 3.13 target runs on GPUs older than Pascal)";
    } else if (sm >= 100 && sm < 120) {
      nearest = "cuda:sm_90 (Hopper; its sm_80 PTX is JIT-compiled by newer drivers), or cuda:sm_120";
    } else {
      nearest = "cuda:sm_80";
    }
    return fail(Code::kInvalidArgument,
                fmt::format("target '{}': IREE 3.13 has no CUDA target for {}; the nearest working choice is {}",
                            spec, arch, nearest));
  }
  t.flags = {"--iree-hal-target-device=cuda", "--iree-cuda-target=" + compiled_as};
  return t;
}

// ---- CPU ------------------------------------------------------------------
const std::map<std::string, std::string> kCpuTriples = {
    {"x86_64", "x86_64-unknown-linux-gnu"}, {"aarch64", "aarch64-unknown-linux-gnu"}};

std::string host_arch() {
  struct utsname u;
  if (uname(&u) != 0) return "x86_64";
  std::string machine = u.machine;
  return machine == "arm64" ? "aarch64" : machine;
}

Result<Target> resolve_cpu(const std::string& spec, const std::vector<std::string>& parts) {
  Target t{Backend::kCpu, spec, host_arch(), "host", "cpu-host", {}, "", "local-task"};
  t.flags = {"--iree-hal-target-device=local", "--iree-hal-local-target-device-backends=llvm-cpu"};
  if (parts.size() == 1) {
    t.flags.push_back("--iree-llvmcpu-target-cpu=host");
    t.note = "tuned for this machine's CPU (" + t.arch + ", --iree-llvmcpu-target-cpu=host)";
    return t;
  }
  std::string arch = util::to_lower(parts[1]);
  if (arch == "arm64") arch = "aarch64";
  if (arch == "amd64" || arch == "x86-64") arch = "x86_64";
  auto triple = kCpuTriples.find(arch);
  if (triple == kCpuTriples.end()) {
    std::string near = util::nearest(arch, {"x86_64", "aarch64"});
    return fail(Code::kInvalidArgument,
                fmt::format("target '{}': unknown CPU architecture '{}'; use cpu, cpu:x86_64[:cpu] or "
                            "cpu:aarch64[:cpu]{}",
                            spec, parts[1], near.empty() ? "" : " (did you mean cpu:" + near + "?)"));
  }
  t.arch = arch;
  t.cpu = parts.size() > 2 && !parts[2].empty() ? parts[2] : "generic";
  bool cpu_ok = !t.cpu.empty() && t.cpu.size() <= 64 && std::isalnum(static_cast<unsigned char>(t.cpu[0])) &&
                t.cpu.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.+-") == std::string::npos;
  if (!cpu_ok) {
    return fail(Code::kInvalidArgument, fmt::format("target '{}': '{}' is not a CPU name (such as znver4, "
                                                    "skylake-avx512, neoverse-v2)", spec, t.cpu));
  }
  t.slug = "cpu-" + arch + (t.cpu == "generic" ? "" : "-" + t.cpu);
  t.flags.push_back("--iree-llvmcpu-target-triple=" + triple->second);
  t.flags.push_back("--iree-llvmcpu-target-cpu=" + t.cpu);
  if (t.cpu == "generic") t.note = "baseline " + arch + " instructions; name a CPU (cpu:" + arch + ":<cpu>) for speed";
  return t;
}

// ---- Vulkan, Metal, ROCm --------------------------------------------------
const std::vector<std::string> kVulkanTargets = {
    "ampere", "ada", "turing", "volta", "pascal", "sm_80", "sm_86", "sm_89", "rtx3090", "rtx4090",
    "rdna1", "rdna2", "rdna3", "rdna4", "cdna1", "cdna2", "cdna3", "cdna4", "gfx90a", "gfx1100",
    "rx7900xtx", "valhall", "valhall1", "valhall2", "valhall3", "valhall4", "adreno",
    "vp_android_baseline_2022"};

const std::vector<std::string> kRocmTargets = {
    "gfx908", "gfx90a", "gfx942", "gfx950", "gfx1100", "gfx1101", "gfx1150", "gfx1151", "gfx1200",
    "gfx1201", "mi100", "mi210", "mi250", "mi250x", "mi300a", "mi300x", "mi325x", "mi355x",
    "rx7900xtx", "rx9070xt"};

// iOS is listed by the compiler but aborts it in 3.13 (an assertion in the
// Metal shader path), so only macOS is offered.
const std::vector<std::string> kMetalPlatforms = {"macos"};

Result<Target> resolve_from_list(Backend backend, const std::string& spec, const std::string& value,
                                 const std::vector<std::string>& choices, const std::string& family) {
  std::string v = util::to_lower(value);
  if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
    std::string near = util::nearest(v, choices);
    return fail(Code::kInvalidArgument,
                fmt::format("target '{}': IREE 3.13 has no {} target '{}'; {}choose one of: {}", spec, family,
                            value, near.empty() ? "" : "the nearest is " + family + ":" + near + "; ",
                            util::join(choices, ", ")));
  }
  Target t{backend, spec, v, "", family + "-" + v, {}, "", ""};
  switch (backend) {
    case Backend::kVulkan:
      t.flags = {"--iree-hal-target-device=vulkan", "--iree-vulkan-target=" + v};
      t.runtime_device = "vulkan";
      break;
    case Backend::kMetal:
      t.flags = {"--iree-hal-target-device=metal", "--iree-metal-target-platform=" + v};
      t.runtime_device = "metal";
      break;
    case Backend::kRocm:
      t.flags = {"--iree-hal-target-device=hip", "--iree-rocm-target=" + v};
      t.runtime_device = "hip";
      break;
    default:
      break;
  }
  return t;
}

}  // namespace

const char* backend_name(Backend backend) {
  switch (backend) {
    case Backend::kCuda: return "cuda";
    case Backend::kCpu: return "cpu";
    case Backend::kVulkan: return "vulkan";
    case Backend::kMetal: return "metal";
    case Backend::kRocm: return "rocm";
  }
  return "?";
}

Result<Target> resolve(const std::string& spec) {
  auto parts = util::split(util::trim(spec), ':');
  std::string family = util::to_lower(parts[0]);
  auto need_value = [&](const char* syntax) -> Status {
    if (parts.size() != 2 || parts[1].empty()) {
      return fail(Code::kInvalidArgument, fmt::format("target '{}': expected {}", spec, syntax));
    }
    return {};
  };
  if (family == "cuda") {
    KILN_TRY_STATUS(need_value("cuda:<sm_NN | GPU name such as a100, h100>"));
    return resolve_cuda(spec, parts[1]);
  }
  if (family == "cpu") {
    if (parts.size() > 3) return fail(Code::kInvalidArgument, "target '" + spec + "': expected cpu[:<arch>[:<cpu name>]]");
    return resolve_cpu(spec, parts);
  }
  if (family == "vulkan") {
    KILN_TRY_STATUS(need_value("vulkan:<target such as rdna3, ampere, valhall>"));
    return resolve_from_list(Backend::kVulkan, spec, parts[1], kVulkanTargets, "vulkan");
  }
  if (family == "metal") {
    KILN_TRY_STATUS(need_value("metal:macos"));
    if (util::to_lower(parts[1]) == "ios" || util::to_lower(parts[1]) == "ios-simulator") {
      return fail(Code::kInvalidArgument,
                  "target '" + spec + "': IREE 3.13's compiler aborts when building for iOS; the nearest "
                  "working choice is metal:macos (the same Metal shaders, macOS packaging)");
    }
    return resolve_from_list(Backend::kMetal, spec, parts[1], kMetalPlatforms, "metal");
  }
  if (family == "rocm" || family == "hip") {
    KILN_TRY_STATUS(need_value("rocm:<gfxNNNN>"));
    return resolve_from_list(Backend::kRocm, spec, parts[1], kRocmTargets, "rocm");
  }
  std::string near = util::nearest(family, {"cuda", "cpu", "vulkan", "metal", "rocm"});
  return fail(Code::kInvalidArgument,
              fmt::format("unknown target '{}'; {}targets are cuda:<gpu>, cpu[:<arch>[:<cpu>]], vulkan:<target>, "
                          "metal:macos, rocm:<gfxNNNN> (see 'kiln targets')",
                          spec, near.empty() ? "" : "did you mean '" + near + "'? "));
}

std::vector<TargetFamily> supported_targets() {
  std::vector<std::string> cuda = kCudaNative;
  cuda.insert(cuda.begin() + 9, "sm_90");
  for (const auto& [name, arch] : kNvidiaGpus) {
    if (sm_number(arch) < 100 || sm_number(arch) >= 120) cuda.push_back(name + " (" + arch + ")");
  }
  return {
      {"cuda:<sm_NN | gpu>", "cuda", cuda,
       "sm_90 (H100, H200) is built as sm_80 PTX and JIT-compiled by the driver; sm_100 to sm_110 are not in IREE 3.13"},
      {"cpu[:<x86_64 | aarch64>[:<cpu>]]", "llvm-cpu", {"host", "x86_64", "aarch64"},
       "<cpu> is an LLVM CPU name such as znver4, skylake-avx512, neoverse-v2, apple-m1"},
      {"vulkan:<target>", "vulkan-spirv", kVulkanTargets, ""},
      {"metal:<platform>", "metal-spirv", kMetalPlatforms, ""},
      {"rocm:<gfxNNNN | gpu>", "rocm", kRocmTargets, ""},
  };
}

}  // namespace kiln::target
