#include <chrono>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "kiln/util/hash.h"
#include "kiln/util/orphans.h"
#include "kiln/util/strings.h"

namespace kiln::testing {
namespace {

class Compile : public KilnTest {
 protected:
  // A folder of IREE "tools" whose iree-compile is a shell script: for the
  // outcomes the real compiler cannot be made to produce on demand (a crash,
  // a compile that never ends). Every other test uses the real compiler.
  fs::path fake_toolchain(const std::string& body) {
    fs::path bin = dir() / "fake-iree";
    write("fake-iree/iree-compile",
          "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'IREE compiler version 3.13.0rc20261016 @ 0123abcd'; exit 0; fi\n" +
              body);
    ::chmod((bin / "iree-compile").c_str(), 0755);
    return bin;
  }
  std::vector<std::string> staging_left(const fs::path& out) {
    std::vector<std::string> left;
    for (const auto& name : listing(out)) {
      if (name.rfind(".kiln-staging-", 0) == 0) left.push_back(name);
    }
    return left;
  }
};

TEST_F(Compile, CpuAndCudaModulesWithCompleteMetadata) {
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "--target", "cpu", "--target", "cuda:h100", "-o", "out"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(listing(dir() / "out"), (std::vector<std::string>{"manifest.json", "mlp.cpu-host.json", "mlp.cpu-host.vmfb",
                                                              "mlp.cuda-sm_90.json", "mlp.cuda-sm_90.vmfb"}));
  auto meta = nlohmann::json::parse(*util::read_file(dir() / "out/mlp.cuda-sm_90.json"));
  EXPECT_EQ(meta["format"], "kiln-module-metadata");
  EXPECT_EQ(meta["iree"]["release"], "3.13.0");
  EXPECT_FALSE(meta["iree"]["revision"].get<std::string>().empty());
  EXPECT_EQ(meta["target"]["spec"], "cuda:h100");
  EXPECT_EQ(meta["target"]["arch"], "sm_90");
  auto cmd = meta["compiler_command"];
  EXPECT_NE(std::find(cmd.begin(), cmd.end(), "--iree-cuda-target=sm_80"), cmd.end());
  EXPECT_EQ(meta["input"]["sha256"], *util::sha256_file(model("mlp.mlir")));
  EXPECT_EQ(meta["output"]["sha256"], *util::sha256_file(dir() / "out/mlp.cuda-sm_90.vmfb"));
  EXPECT_EQ(meta["output"]["size_bytes"], fs::file_size(dir() / "out/mlp.cuda-sm_90.vmfb"));
  EXPECT_GT(meta["compile"]["wall_seconds"].get<double>(), 0);
  EXPECT_GT(meta["compile"]["peak_rss_bytes"].get<double>(), 10e6) << "iree-compile uses more than 10 MB";
  EXPECT_EQ(meta["functions"][0]["arguments"][0]["type"], "tensor<8x64xf32>");
}

TEST_F(Compile, ModulesFromEveryFormRunOnCpuAndMatchJax) {
  // Every model, from text, bytecode and the portable artifact, compiled for
  // this CPU and run by the real iree-run-module against JAX's numbers.
  for (const char* form : {".mlir", ".mlirbc", ".vhlo.mlirbc"}) {
    std::vector<std::string> args = {"compile", "--target", "cpu", "-o", "modules"};
    for (const char* name : {"mlp", "gemm_f32", "gemm_bf16", "layernorm_gelu", "conv", "attention", "mixed_types"}) {
      args.push_back(model(std::string(name) + form).string());
    }
    fs::remove_all(dir() / "modules");
    Outcome r = kiln(args);
    ASSERT_EQ(r.status, 0) << form << ": " << r.err;
    Outcome check = run({(venv() / "bin/python").string(), std::string(KILN_SOURCE_DIR) + "/scripts/verify_modules.py",
                     dir().string(), "--device", "local-task"});
    EXPECT_EQ(check.status, 0) << form << ":\n" << check.out << check.err;
    EXPECT_NE(check.out.find("mixed_types"), std::string::npos) << check.out;
  }
}

TEST_F(Compile, VerificationCatchesAWrongModule) {
  // The check above must be able to fail: a module built from another
  // program under the right name gives different numbers.
  ASSERT_EQ(kiln({"compile", model("gemm_f32.mlir").string(), "--target", "cpu", "-o", "modules", "--name", "gemm_f32"}).status, 0);
  write("swapped.mlir",
        "module @jit_gemm_f32 {\n  func.func public @main(%a: tensor<512x512xf32>, %b: tensor<512x512xf32>) -> tensor<512x512xf32> {\n"
        "    %0 = stablehlo.add %a, %b : tensor<512x512xf32>\n    return %0 : tensor<512x512xf32>\n  }\n}\n");
  ASSERT_EQ(kiln({"compile", "swapped.mlir", "--target", "cpu", "-o", "modules", "--name", "gemm_f32"}).status, 0);
  Outcome check = run({(venv() / "bin/python").string(), std::string(KILN_SOURCE_DIR) + "/scripts/verify_modules.py",
                   dir().string(), "--device", "local-task"});
  EXPECT_EQ(check.status, 1) << check.out << check.err;
  EXPECT_NE(check.out.find("MISMATCH"), std::string::npos) << check.out;
}

TEST_F(Compile, OptionsAreAppliedAndRecorded) {
  Outcome r = kiln({"compile", model("conv.mlir").string(), "-t", "cpu:x86_64:znver3", "-o", "out", "-O", "O3",
                "--no-data-tiling", "--json", "--", "--iree-opt-const-eval=false"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto unit = r.json()["units"][0];
  EXPECT_EQ(unit["ok"], true);
  auto meta = unit["record"];
  EXPECT_EQ(meta["options"]["opt_level"], "O3");
  EXPECT_EQ(meta["options"]["data_tiling"], false);
  EXPECT_EQ(meta["options"]["extra_flags"], (nlohmann::json{"--iree-opt-const-eval=false"}));
  std::string line = meta["compiler_command_line"];
  for (const char* flag : {"--iree-opt-level=O3", "--iree-opt-data-tiling=false", "--iree-opt-const-eval=false",
                           "--iree-llvmcpu-target-cpu=znver3", "--iree-llvmcpu-target-triple=x86_64-unknown-linux-gnu"}) {
    EXPECT_NE(line.find(flag), std::string::npos) << flag << " missing from " << line;
  }
  EXPECT_TRUE(fs::exists(dir() / "out/conv.cpu-x86_64-znver3.vmfb"));
}

TEST_F(Compile, AsyncInvocationModulesRunAndGiveTheSyncModulesNumbers) {
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out", "--invocation", "async", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  auto meta = r.json()["units"][0]["record"];
  EXPECT_EQ(meta["invocation"], "async");
  std::string line = meta["compiler_command_line"];
  EXPECT_NE(line.find("--iree-execution-model=async-external"), std::string::npos) << line;
  fs::path module = dir() / "out/mlp.cpu-host.vmfb";
  // The runtime tools pass the fences; kiln's inputs and outputs are the
  // source signature's, with the metadata and without it.
  Outcome run = kiln({"run", module.string(), "--seed", "3", "-o", "ran", "--json"});
  ASSERT_EQ(run.status, 0) << run.err;
  Outcome sync = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "sync"});
  ASSERT_EQ(sync.status, 0) << sync.err;
  Outcome check = kiln({"validate", (dir() / "sync/mlp.cpu-host.vmfb").string(), "--inputs", (dir() / "ran/inputs.npz").string(),
                        "--expected", (dir() / "ran/outputs.npz").string(), "--json"});
  ASSERT_EQ(check.status, 0) << check.out << check.err;
  fs::remove(dir() / "out/mlp.cpu-host.json");
  Outcome bare = kiln({"run", module.string(), "--seed", "3", "-o", "bare"});
  ASSERT_EQ(bare.status, 0) << bare.err;
  EXPECT_EQ(*util::read_file(dir() / "bare/outputs.npz"), *util::read_file(dir() / "ran/outputs.npz"));
  // A wrong value is refused before it reaches the compiler.
  Outcome bad = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "bad", "--invocation", "pipelined"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("invocation 'pipelined' is not one of sync, async"), std::string::npos) << bad.err;
}

TEST_F(Compile, CompilerErrorsShowPositionAndLeaveNothing) {
  write("bad.mlir",
        "module @bad {\n  func.func public @main(%a: tensor<4xf32>, %b: tensor<4xi32>) -> tensor<4xf32> {\n"
        "    %0 = stablehlo.add %a, %b : (tensor<4xf32>, tensor<4xi32>) -> tensor<4xf32>\n"
        "    return %0 : tensor<4xf32>\n  }\n}\n");
  Outcome r = kiln({"compile", "bad.mlir", "-t", "cpu", "-o", "out"});
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_NE(r.err.find("bad.mlir:3:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir() / "out"), std::vector<std::string>{"bad.cpu-host.log"}) << "a failed compile leaves its log only";
}

TEST_F(Compile, ALinkFailureKeepsTheLinkersLineWithAHintAndTheLog) {
  // f64 atan2 kept as f64 for the CPU: IREE's CPU device library has no f64
  // atan2, and only the linker says so.
  write("atan2.mlir",
        "module @jit_f {\n  func.func public @main(%a: tensor<4xf64>, %b: tensor<4xf64>) -> (tensor<4xf64>) {\n"
        "    %0 = stablehlo.atan2 %a, %b : tensor<4xf64>\n    return %0 : tensor<4xf64>\n  }\n}\n");
  Outcome r = kiln({"compile", "atan2.mlir", "-t", "cpu", "-o", "out", "--no-cache", "--flag=--iree-input-demote-f64-to-f32=false"});
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_NE(r.err.find("iree-lld: error: undefined symbol: atan2"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\nhint: the device library of IREE 3.13 for cpu has no f64 `atan2`"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("more lines in out/atan2.cpu-host.log"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("atan2.mlir:3:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(dir().string()), std::string::npos) << "the input as it was named, no absolute paths: " << r.err;
  EXPECT_LT(r.err.size(), 5000u);
  EXPECT_EQ(listing(dir() / "out"), std::vector<std::string>{"atan2.cpu-host.log"});
  auto log = util::read_file(dir() / "out/atan2.cpu-host.log");
  ASSERT_TRUE(log);
  EXPECT_EQ(log->rfind("# kiln compile log 1\n", 0), 0u);
  EXPECT_NE(log->find("--iree-input-demote-f64-to-f32=false"), std::string::npos) << "the command";
  EXPECT_NE(log->find("llvm.intr.atan2"), std::string::npos) << "the compiler's whole output";
  // The same unit compiled the compiler's default way: the stale log goes.
  Outcome fixed = kiln({"compile", "atan2.mlir", "-t", "cpu", "-o", "out", "--no-cache"});
  EXPECT_EQ(fixed.status, 0) << fixed.err;
  EXPECT_FALSE(fs::exists(dir() / "out/atan2.cpu-host.log"));
}

TEST_F(Compile, AnUnknownCustomCallIsNamedInAHint) {
  write("custom.mlir",
        "module @jit_f {\n  func.func public @main(%a: tensor<4xf32>) -> (tensor<4xf32>) {\n"
        "    %0 = stablehlo.custom_call @my_fancy_kernel(%a) {api_version = 2 : i32} : (tensor<4xf32>) -> tensor<4xf32>\n"
        "    return %0 : tensor<4xf32>\n  }\n}\n");
  Outcome r = kiln({"compile", "custom.mlir", "-t", "cuda:h100", "-o", "out", "--no-cache"});
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_NE(r.err.find("hint: `stablehlo.custom_call @my_fancy_kernel` is not supported by IREE"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("full log: out/custom.cuda-sm_90.log"), std::string::npos) << r.err;
}

TEST_F(Compile, UnsupportedTargetIsRefusedBeforeCompiling) {
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "-t", "cuda:b200", "-o", "out"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("nearest working choice is cuda:sm_90"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir() / "out"));
}

TEST_F(Compile, TimeLimitKillsTheCompilerAndLeavesNothing) {
  Outcome r = kiln({"compile", model("big_constant.mlir").string(), "-t", "cpu", "-o", "out", "--timeout", "0.05"});
  EXPECT_EQ(r.status, 6) << r.err;
  EXPECT_NE(r.err.find("time limit"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir() / "out"), std::vector<std::string>{"big_constant.cpu-host.log"});
}

TEST_F(Compile, ACrashingCompilerIsReportedAsACrash) {
  fs::path tools = fake_toolchain("echo 'Stack dump:' >&2\nkill -SEGV $$\n");
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out"}, {"KILN_IREE_DIR=" + tools.string()});
  EXPECT_EQ(r.status, 70) << r.err;
  EXPECT_NE(r.err.find("iree-compile crashed (killed by signal 11, "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("crashed (crashed"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("rejected"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir() / "out"), std::vector<std::string>{"mlp.cpu-host.log"});
}

TEST_F(Compile, SigtermStopsTheCompilerAndCleansUp) {
  fs::path tools = fake_toolchain("echo $$ > \"" + (dir() / "compiler.pid").string() + "\"\nsleep 60\n");
  std::string script = "KILN_IREE_DIR=" + tools.string() + " " + KILN_BINARY + " compile " + model("mlp.mlir").string() +
                       " -t cpu -o out & k=$!; while [ ! -s compiler.pid ]; do sleep 0.05; done; kill -TERM $k; "
                       "wait $k; echo status=$?";
  Outcome r = run({"/bin/sh", "-c", script});
  EXPECT_NE(r.out.find("status=130"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  EXPECT_TRUE(staging_left(dir() / "out").empty());
  std::string pid = std::string(util::trim(*util::read_file(dir() / "compiler.pid")));
  EXPECT_FALSE(fs::exists("/proc/" + pid)) << "the compiler process " << pid << " was left running";
}

TEST_F(Compile, KillNineLeavesAStagingFolderThatTheNextCompileRemovesButNeverALiveOne) {
  fs::path tools = fake_toolchain("echo $$ > \"" + (dir() / "compiler.pid").string() + "\"\nsleep 60\n");
  std::string script = "KILN_IREE_DIR=" + tools.string() + " " + KILN_BINARY + " compile " + model("mlp.mlir").string() +
                       " -t cpu -o out --no-cache & k=$!; while [ ! -s compiler.pid ]; do sleep 0.05; done; "
                       "kill -KILL $k; wait $k; echo status=$?";
  Outcome r = run({"/bin/sh", "-c", script});
  EXPECT_NE(r.out.find("status=137"), std::string::npos) << r.out << r.err;
  ASSERT_EQ(staging_left(dir() / "out").size(), 1u) << "SIGKILL leaves the staging folder";
  // A folder of a process that is alive (this test), and one whose owner
  // file names a recycled pid (this pid, another start time).
  fs::create_directories(dir() / "out/.kiln-staging-live");
  write("out/.kiln-staging-live/.kiln-owner", util::self_owner() + "\n");
  fs::create_directories(dir() / "out/.kiln-staging-recycled");
  write("out/.kiln-staging-recycled/.kiln-owner", std::to_string(::getpid()) + " 1\n");
  // The orphaned compiler (its parent died) is not kiln's to stop; end it here.
  ::kill(std::stoi(std::string(util::trim(*util::read_file(dir() / "compiler.pid")))), SIGKILL);

  Outcome next = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out"});
  ASSERT_EQ(next.status, 0) << next.err;
  EXPECT_EQ(staging_left(dir() / "out"), (std::vector<std::string>{".kiln-staging-live"}))
      << "the dead process's folders are gone, the live one's stays";
  Outcome doctor = kiln({"doctor", "--clean", (dir() / "out").string(), "--json"});
  ASSERT_EQ(doctor.status, 0) << doctor.err;
  EXPECT_EQ(doctor.json()["removed"].size(), 0u) << doctor.out;
  EXPECT_TRUE(fs::exists(dir() / "out/.kiln-staging-live"));
}

// Runs `kiln compile ARGS` with the cache in "cache", stopped at a fault
// point (util/fault.h), and SIGKILLs it there; returns the shell's report.
std::string kill_at(const std::string& point, const std::string& args) {
  return "KILN_CACHE_DIR=cache KILN_FAULT_PAUSE=" + point + " KILN_FAULT_MARKER=paused " + std::string(KILN_BINARY) +
         " compile " + args + " & k=$!; i=0; while [ ! -s paused ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done; "
         "kill -KILL $k; wait $k; echo status=$?";
}

TEST_F(Compile, KillNineBeforeTheCompilerStartsLeavesNothingAfterTheNextCompile) {
  Outcome r = run({"/bin/sh", "-c", kill_at("compile-before-compiler", model("mlp.mlir").string() + " -t cpu -o out")});
  EXPECT_NE(r.out.find("status=137"), std::string::npos) << r.out << r.err;
  ASSERT_EQ(staging_left(dir() / "out").size(), 1u) << "killed with its staging folder made";
  EXPECT_FALSE(fs::exists(dir() / "out/mlp.cpu-host.vmfb"));
  EXPECT_FALSE(fs::exists(dir() / "out/mlp.cpu-host.json"));

  Outcome next = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out"});
  ASSERT_EQ(next.status, 0) << next.err;
  EXPECT_EQ(listing(dir() / "out"), (std::vector<std::string>{"manifest.json", "mlp.cpu-host.json", "mlp.cpu-host.vmfb"}));
  auto meta = nlohmann::json::parse(*util::read_file(dir() / "out/mlp.cpu-host.json"));
  EXPECT_EQ(meta["output"]["sha256"], *util::sha256_file(dir() / "out/mlp.cpu-host.vmfb"));
  EXPECT_TRUE(listing(dir() / "cache/v1/tmp").empty());
}

TEST_F(Compile, KillNineBetweenTheModuleAndItsMetadataLeavesNoMismatchedPair) {
  // An earlier build of "m" from one program, then a build of "m" from
  // another killed after its module is in place and before its record is.
  ASSERT_EQ(kiln({"compile", model("mlp.mlir").string(), "--name", "m", "-t", "cpu", "-o", "out"}).status, 0);
  std::string conv = model("conv.mlir").string();
  Outcome r = run({"/bin/sh", "-c", kill_at("compile-between-renames", conv + " --name m -t cpu -o out")});
  EXPECT_NE(r.out.find("status=137"), std::string::npos) << r.out << r.err;
  EXPECT_EQ(staging_left(dir() / "out").size(), 1u);
  ASSERT_TRUE(fs::exists(dir() / "out/m.cpu-host.vmfb"));
  EXPECT_FALSE(fs::exists(dir() / "out/m.cpu-host.json"))
      << "the record of the earlier module must not describe the new one";

  Outcome next = kiln({"compile", conv, "--name", "m", "-t", "cpu", "-o", "out", "--json"});
  ASSERT_EQ(next.status, 0) << next.err;
  EXPECT_TRUE(next.json()["units"][0]["cache_hit"].get<bool>()) << "the killed compile's cache entry is whole";
  EXPECT_TRUE(staging_left(dir() / "out").empty());
  auto meta = nlohmann::json::parse(*util::read_file(dir() / "out/m.cpu-host.json"));
  EXPECT_EQ(meta["output"]["sha256"], *util::sha256_file(dir() / "out/m.cpu-host.vmfb"));
  EXPECT_EQ(meta["input"]["sha256"], *util::sha256_file(conv));
  EXPECT_TRUE(listing(dir() / "cache/v1/tmp").empty());
}

TEST_F(Compile, OtherIreeReleaseIsRefused) {
  fs::path tools = dir() / "old-iree";
  write("old-iree/iree-compile", "#!/bin/sh\necho 'IREE compiler version 3.1.0rc20250101 @ 0123abcd'\n");
  ::chmod((tools / "iree-compile").c_str(), 0755);
  Outcome r = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu"}, {"KILN_IREE_DIR=" + tools.string()});
  EXPECT_EQ(r.status, 4) << r.err;
  EXPECT_NE(r.err.find("release 3.1.0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("3.13.0"), std::string::npos) << r.err;
}

TEST_F(Compile, AnErrorOnAMegabyteLineIsReportedNotACrash) {
  // One long line with an error in it: the compiler quotes it whole.
  std::string values;
  for (int i = 0; i < 20000; ++i) values += (i ? ", " : "") + std::to_string(i) + ".5";
  write("long.mlir", "func.func @main() -> tensor<3xf32> {\n  %0 = stablehlo.constant dense<[" + values +
                         "]> : tensor<3xf32>\n  return %0 : tensor<3xf32>\n}\n");
  auto started = std::chrono::steady_clock::now();
  Outcome r = kiln({"compile", "long.mlir", "-t", "cpu", "-o", "out"});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.status, 139) << "crashed";
  EXPECT_NE(r.err.find("long.mlir:2:"), std::string::npos) << r.err.substr(0, 2000);
  EXPECT_LT(r.err.size(), 20000u);
  EXPECT_LT(seconds, 30);
  EXPECT_TRUE(staging_left(dir() / "out").empty());
}

}  // namespace
}  // namespace kiln::testing
