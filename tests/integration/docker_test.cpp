// The container executor against a real dockerd and kiln's real CPU image
// (built by the docker_image fixture). Skipped, with the reason, only where
// no Docker engine can be had at all.
#include <csignal>
#include <fstream>
#include <future>
#include <thread>

#include "harness.h"
#include "kiln/docker/container_executor.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"
#include "kiln/version.h"

namespace kiln::testing {
namespace {

const std::string kImage = std::string("kiln-cpu:") + KILN_VERSION;

class Docker : public KilnTest {
 protected:
  void SetUp() override {
    KilnTest::SetUp();
    auto engine = docker::Engine::connect();
    if (!engine) GTEST_SKIP() << "no Docker engine: " << engine.error().message;
  }
  // Containers kiln made that still exist: none may be left after any test.
  std::vector<std::string> leftover_containers() {
    auto engine = docker::Engine::connect();
    auto list = engine->call("GET", "/containers/json?all=true&filters=" +
                                        std::string("%7B%22label%22%3A%5B%22dev.kiln.executor%22%5D%7D"));
    std::vector<std::string> ids;
    if (list) {
      for (const auto& c : *list) ids.push_back(c["Id"].get<std::string>().substr(0, 12));
    }
    return ids;
  }
  std::unique_ptr<docker::ContainerExecutor> executor(docker::Limits limits = {}) {
    auto e = docker::ContainerExecutor::create(kImage, limits);
    EXPECT_TRUE(e) << e.error().message;
    return e ? std::move(*e) : nullptr;
  }
  // Runs a shell script inside a kiln container with an output folder "out".
  util::ProcessResult sh(docker::ContainerExecutor& e, const std::string& script, int timeout_ms = 60000) {
    fs::create_directories(dir() / "out");
    write("input.txt", "read me");
    auto r = e.run({{"/bin/sh", "-c", script}, dir() / "input.txt", dir() / "out", std::chrono::milliseconds(timeout_ms)});
    EXPECT_TRUE(r) << r.error().message;
    return r ? *r : util::ProcessResult{};
  }
};

TEST_F(Docker, CompilesInAContainerLikeLocally) {
  std::string mlp = model("mlp.mlir").string();
  Outcome in_container = kiln({"compile", mlp, "-t", "cpu:x86_64:znver3", "-o", "docker", "--executor", "docker", "--no-cache"});
  ASSERT_EQ(in_container.status, 0) << in_container.err;
  Outcome local = kiln({"compile", mlp, "-t", "cpu:x86_64:znver3", "-o", "local", "--no-cache"});
  ASSERT_EQ(local.status, 0) << local.err;
  auto meta = nlohmann::json::parse(*util::read_file(dir() / "docker/mlp.cpu-x86_64-znver3.json"));
  EXPECT_EQ(meta["executor"], "docker");
  EXPECT_EQ(meta["compiler_command"][0], "/opt/kiln/bin/iree-compile");
  EXPECT_EQ(meta["iree"]["release"], "3.13.0");
  EXPECT_GT(meta["compile"]["peak_rss_bytes"].get<double>(), 10e6) << "measured inside the container";
  EXPECT_EQ(*util::sha256_file(dir() / "docker/mlp.cpu-x86_64-znver3.vmfb"),
            *util::sha256_file(dir() / "local/mlp.cpu-x86_64-znver3.vmfb"))
      << "the image holds the same pinned compiler";
  EXPECT_TRUE(leftover_containers().empty());
  // The module built in the container runs, in a container too.
  Outcome run = kiln({"run", (dir() / "docker/mlp.cpu-x86_64-znver3.vmfb").string(), "--executor", "docker", "-o", "r"});
  EXPECT_EQ(run.status, 0) << run.err;
  EXPECT_TRUE(fs::exists(dir() / "r/output0.npy"));
}

// A compile that needs a fallback (compile/fallback.h) gets it in a
// container as locally: the retry runs through the same executor.
TEST_F(Docker, FallbacksApplyInAContainer) {
  Outcome c = kiln({"compile", model("linear_bias_bf16.mlir").string(), "-t", "cuda:h100", "-o", "docker", "--executor",
                    "docker", "--no-cache"});
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_NE(c.err.find("fallback 'no-vector-distribution'"), std::string::npos) << c.err;
  auto meta = nlohmann::json::parse(*util::read_file(dir() / "docker/linear_bias_bf16.cuda-sm_90.json"));
  EXPECT_EQ(meta["executor"], "docker");
  EXPECT_EQ(meta["fallbacks"][0]["name"], "no-vector-distribution");
  // The early run up to the executable configurations ran in a container too.
  EXPECT_EQ(meta["fallbacks"][0]["executables"], nlohmann::json::array({"main_dispatch_0"})) << meta.dump();
  EXPECT_TRUE(leftover_containers().empty());
}

TEST_F(Docker, CompilerErrorsComeBackWithPositions) {
  write("bad.mlir",
        "module @bad {\n  func.func public @main(%a: tensor<4xf32>, %b: tensor<4xi32>) -> tensor<4xf32> {\n"
        "    %0 = stablehlo.add %a, %b : (tensor<4xf32>, tensor<4xi32>) -> tensor<4xf32>\n"
        "    return %0 : tensor<4xf32>\n  }\n}\n");
  Outcome r = kiln({"compile", "bad.mlir", "-t", "cpu", "-o", "out", "--executor", "docker"});
  EXPECT_EQ(r.status, 5) << r.err;
  EXPECT_NE(r.err.find("bad.mlir:3:"), std::string::npos) << r.err;
  EXPECT_EQ(listing(dir() / "out"), std::vector<std::string>{"bad.cpu-host.log"});
  EXPECT_TRUE(leftover_containers().empty());
}

TEST_F(Docker, HardeningSeenFromInside) {
  auto e = executor({.memory_bytes = 256ull << 20, .cpus = 1, .pids = 64, .tmpfs_size = "8m"});
  ASSERT_TRUE(e);
  auto r = sh(*e,
              "echo uid=$(id -u);"
              "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status;"
              "echo net=$(ls /sys/class/net | tr '\\n' ' ')end;"
              "touch /etc/kiln-test 2>/dev/null && echo root-writable || echo root-readonly;"
              "touch " + (dir() / "input-side").string() + " 2>/dev/null && echo outside-writable || echo outside-blocked;"
              "echo x >> " + (dir() / "input.txt").string() + " 2>/dev/null && echo input-writable || echo input-readonly;"
              "touch " + (dir() / "out/ok").string() + " && echo out-writable;"
              "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null && echo tmp-unbounded || echo tmp-limited;");
  EXPECT_EQ(r.exit_status, 0) << r.err;
  EXPECT_NE(r.out.find("uid=10001"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CapEff:\t0000000000000000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("NoNewPrivs:\t1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("net=lo end"), std::string::npos) << "only loopback: " << r.out;
  EXPECT_NE(r.out.find("root-readonly"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("outside-blocked"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("input-readonly"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("out-writable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tmp-limited"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(dir() / "input-side"));
  EXPECT_EQ(*util::read_file(dir() / "input.txt"), "read me");
  EXPECT_TRUE(leftover_containers().empty());
}

TEST_F(Docker, HardeningSeenFromOutside) {
  auto e = executor({.memory_bytes = 300ull << 20, .cpus = 1.5, .pids = 99, .tmpfs_size = "16m"});
  ASSERT_TRUE(e);
  auto running = std::async(std::launch::async, [&] { return sh(*e, "sleep 3"); });
  nlohmann::json host;
  auto engine = docker::Engine::connect();
  for (int i = 0; i < 100 && host.is_null(); ++i) {
    for (const auto& id : leftover_containers()) {
      auto c = engine->call("GET", "/containers/" + id + "/json");
      if (c) host = (*c)["HostConfig"], host["User"] = (*c)["Config"]["User"];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  running.get();
  ASSERT_FALSE(host.is_null()) << "never saw the container running";
  EXPECT_EQ(host["NetworkMode"], "none");
  EXPECT_EQ(host["ReadonlyRootfs"], true);
  EXPECT_EQ(host["CapDrop"], (nlohmann::json{"ALL"}));
  EXPECT_EQ(host["SecurityOpt"], (nlohmann::json{"no-new-privileges"}));
  EXPECT_EQ(host["Memory"], 300ll << 20);
  EXPECT_EQ(host["PidsLimit"], 99);
  EXPECT_EQ(host["NanoCpus"], 1500000000ll);
  EXPECT_EQ(host["Tmpfs"]["/tmp"], "rw,noexec,nosuid,nodev,size=16m");
  EXPECT_EQ(host["User"], "10001:10001");
  EXPECT_TRUE(leftover_containers().empty()) << "removed after it ended";
}

TEST_F(Docker, MemoryLimitKillsAndSaysSo) {
  auto e = executor({.memory_bytes = 64ull << 20, .cpus = 0, .pids = 64, .tmpfs_size = "512m"});
  ASSERT_TRUE(e);
  // The shell holds 200 MB in a variable: more than the container may have.
  auto r = sh(*e, "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}");
  EXPECT_TRUE(r.out_of_memory) << "exit " << r.exit_status << " " << r.err;
  EXPECT_NE(r.limit_note.find("64.0 MiB"), std::string::npos) << r.limit_note;
  EXPECT_TRUE(leftover_containers().empty());
}

TEST_F(Docker, TimeLimitKillsAndRemoves) {
  auto e = executor();
  ASSERT_TRUE(e);
  auto started = std::chrono::steady_clock::now();
  auto r = sh(*e, "sleep 60", 1500);
  EXPECT_TRUE(r.timed_out);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 30);
  EXPECT_TRUE(leftover_containers().empty());
  // Through the CLI: the compile's time limit, nothing left behind.
  Outcome cli = kiln({"compile", model("big_constant.mlir").string(), "-t", "cpu", "-o", "out2", "--executor", "docker",
                      "--timeout", "0.5", "--no-cache"});
  EXPECT_EQ(cli.status, 6) << cli.err;
  // Only the compiler's log of the failed unit: no module, no staging folder.
  EXPECT_EQ(listing(dir() / "out2"), std::vector<std::string>{"big_constant.cpu-host.log"});
  EXPECT_TRUE(leftover_containers().empty());
}

TEST_F(Docker, SigtermRemovesTheContainer) {
  // Several units one after another; TERM as soon as the first container exists.
  std::string script = "KILN_CACHE_DIR=cache " + std::string(KILN_BINARY) + " compile " +
                       model("big_constant.mlir").string() +
                       " -t cpu -t cuda:a100 -t vulkan:rdna3 -t rocm:gfx942 -j 1 -o out --executor docker & k=$!; "
                       "until [ -n \"$(docker ps -q --filter label=dev.kiln.executor)\" ]; do sleep 0.05; done; "
                       "kill -TERM $k; wait $k; echo status=$?";
  Outcome r = run({"/bin/sh", "-c", script});
  EXPECT_NE(r.out.find("status=130"), std::string::npos) << r.out << r.err;
  EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
  EXPECT_TRUE(leftover_containers().empty());
  for (const auto& f : listing(dir() / "out")) ADD_FAILURE() << "left behind: " << f;
}

TEST_F(Docker, KillNineLeavesNothingOnceAnyKilnRunsAgain) {
  // The reported scenario: SIGKILL while containers run leaves exited
  // containers and staging folders; the next kiln command reaps them.
  std::string script = "KILN_CACHE_DIR=cache " + std::string(KILN_BINARY) + " compile " +
                       model("big_constant.mlir").string() + " " + model("mlp.mlir").string() + " " +
                       model("conv.mlir").string() + " -t cpu -j 3 -o out --executor docker & k=$!; "
                       "until [ -n \"$(docker ps -q --filter label=dev.kiln.executor)\" ]; do sleep 0.05; done; "
                       "kill -KILL $k; wait $k; echo status=$?";
  Outcome killed = run({"/bin/sh", "-c", script});
  EXPECT_NE(killed.out.find("status=137"), std::string::npos) << killed.out << killed.err;
  bool staged = false;
  for (const auto& f : listing(dir() / "out")) staged |= f.rfind(".kiln-staging-", 0) == 0;
  EXPECT_TRUE(staged || !leftover_containers().empty()) << "the kill came too late to leave anything";
  Outcome again = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "-o", "out", "--executor", "docker"},
                       {"KILN_CACHE_DIR=" + (dir() / "cache").string()});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(leftover_containers().empty());
  for (const auto& f : listing(dir() / "out")) EXPECT_NE(f.rfind(".kiln-staging-", 0), 0u) << "left behind: " << f;
  Outcome doctor = kiln({"doctor", "--clean", (dir() / "out").string(), "--json"});
  ASSERT_EQ(doctor.status, 0) << doctor.err;
  EXPECT_EQ(doctor.json()["removed"].size(), 0u) << doctor.out;
}

// The engine's command line, from the pid file dockerd writes, quoted for
// sh; empty when the engine is not a dockerd process of this host.
std::string engine_command(std::string& pid) {
  auto text = util::read_file("/var/run/docker.pid");
  if (!text) return "";
  pid = std::string(util::trim(*text));
  // procfs files have no size: read as a stream, not with util::read_file.
  std::ifstream in("/proc/" + pid + "/cmdline", std::ios::binary);
  std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (cmdline.empty()) return "";
  std::string command;
  for (const auto& arg : util::split(cmdline.substr(0, cmdline.size() - 1), '\0')) {
    std::string quoted = "'";
    for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    command += (command.empty() ? "" : " ") + quoted + "'";
  }
  return command.find("dockerd") == std::string::npos ? "" : command;
}

TEST_F(Docker, EngineRestartedMidCompileIsAClearErrorAndLeavesNothing) {
  // Restarts the engine every Docker test uses (they run one at a time):
  // SIGTERM to dockerd while a compile container runs, then the same
  // command line again, as a service manager would.
  const char* host = std::getenv("DOCKER_HOST");
  if (host && *host && std::string(host) != "unix:///var/run/docker.sock") GTEST_SKIP() << "DOCKER_HOST=" << host;
  std::string pid;
  std::string command = engine_command(pid);
  if (command.empty() || ::geteuid() != 0) GTEST_SKIP() << "restarting the engine needs root and a dockerd process here";
  std::string script =
      "KILN_CACHE_DIR=cache " + std::string(KILN_BINARY) + " compile " + model("big_constant.mlir").string() +
      " -t cpu -o out --executor docker 2>err & k=$!; "
      "until [ -n \"$(docker ps -q --filter label=dev.kiln.executor)\" ] || ! kill -0 $k 2>/dev/null; do sleep 0.05; done; "
      "if kill -0 $k 2>/dev/null; then kill -TERM " + pid + "; while kill -0 " + pid + " 2>/dev/null; do sleep 0.1; done; "
      "setsid " + command + " >>/var/log/kiln-dockerd.log 2>&1 </dev/null & fi; "
      "wait $k; echo status=$?";
  Outcome r = run({"/bin/sh", "-c", script});
  std::string err = *util::read_file(dir() / "err");
  EXPECT_NE(r.out.find("status=8"), std::string::npos) << r.out << r.err << err;
  EXPECT_NE(err.find("the Docker engine was restarted while container kiln-"), std::string::npos) << err;
  EXPECT_NE(err.find("Run the command again"), std::string::npos) << err;
  for (int i = 0; i < 600 && !docker::Engine::connect(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(docker::Engine::connect()) << "the engine did not come back";
  EXPECT_TRUE(listing(dir() / "out").empty() || listing(dir() / "out") == std::vector<std::string>{"big_constant.cpu-host.log"})
      << "staging folder left: " << util::join(listing(dir() / "out"), " ");

  Outcome again = kiln({"compile", model("big_constant.mlir").string(), "-t", "cpu", "-o", "out", "--executor", "docker"});
  ASSERT_EQ(again.status, 0) << again.err;
  EXPECT_TRUE(leftover_containers().empty());
  for (const auto& f : listing(dir() / "out")) EXPECT_NE(f.rfind(".kiln-staging-", 0), 0u) << "left behind: " << f;
}

TEST_F(Docker, EngineProblemsAreClear) {
  Outcome no_engine = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "--executor", "docker"},
                           {"DOCKER_HOST=unix://" + (dir() / "nothing.sock").string()});
  EXPECT_EQ(no_engine.status, 8) << no_engine.err;
  EXPECT_NE(no_engine.err.find("no Docker engine answers"), std::string::npos) << no_engine.err;
  Outcome no_image = kiln({"compile", model("mlp.mlir").string(), "-t", "cpu", "--executor", "docker"},
                          {"KILN_DOCKER_IMAGE=kiln-cpu:does-not-exist"});
  EXPECT_EQ(no_image.status, 4) << no_image.err;
  EXPECT_NE(no_image.err.find("scripts/build-images.sh"), std::string::npos) << no_image.err;
}

TEST_F(Docker, ImageCarriesVersionsAndANonRootUser) {
  auto engine = docker::Engine::connect();
  auto image = engine->call("GET", "/images/" + kImage + "/json");
  ASSERT_TRUE(image) << image.error().message;
  const auto& config = (*image)["Config"];
  EXPECT_EQ(config["User"], "10001:10001");
  EXPECT_EQ(config["Labels"]["org.opencontainers.image.version"], KILN_VERSION);
  EXPECT_EQ(config["Labels"]["dev.kiln.iree.release"], "3.13.0");
  EXPECT_FALSE(config["Labels"]["dev.kiln.iree.revision"].get<std::string>().empty());
}

TEST_F(Docker, GithubActionCompilesInTheImage) {
  // The composite action's body, as a workflow step runs it.
  fs::copy_file(model("mlp.mlir"), dir() / "model.mlir");
  Outcome r = run({"/usr/bin/env", "KILN_IMAGE=" + kImage, "KILN_MODEL=model.mlir", "KILN_TARGETS=cpu,\ncuda:h100",
                   "KILN_OUT=built", "KILN_OPTIONS=-O O2", "GITHUB_WORKSPACE=" + dir().string(),
                   "GITHUB_OUTPUT=" + (dir() / "outputs").string(), "bash",
                   std::string(KILN_SOURCE_DIR) + "/scripts/action-compile.sh"});
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::string outputs = *util::read_file(dir() / "outputs");
  EXPECT_NE(outputs.find("manifest=built/manifest.json"), std::string::npos) << outputs;
  EXPECT_NE(outputs.find("built/model.cpu-host.vmfb\nbuilt/model.cuda-sm_90.vmfb"), std::string::npos) << outputs;
  EXPECT_TRUE(fs::exists(dir() / "built/model.cuda-sm_90.json"));
  Outcome missing = run({"/usr/bin/env", "KILN_IMAGE=" + kImage, "KILN_MODEL=nothing.mlir", "KILN_OUT=built",
                         "GITHUB_WORKSPACE=" + dir().string(), "bash",
                         std::string(KILN_SOURCE_DIR) + "/scripts/action-compile.sh"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.out.find("::error::model nothing.mlir is not a file"), std::string::npos) << missing.out;
}

}  // namespace
}  // namespace kiln::testing
