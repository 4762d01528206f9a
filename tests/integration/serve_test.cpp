// kiln serve on loopback, driven by a real HTTP client (curl).
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <fstream>
#include <thread>

#include "harness.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::testing {
namespace {

const std::string kToken = "test-token-0123456789abcdef";

class Serve : public KilnTest {
 protected:
  void TearDown() override {
    stop(SIGTERM);
    KilnTest::TearDown();
  }

  // Starts `kiln serve` on a free port with the given extra arguments.
  void start(const std::vector<std::string>& extra = {}, const std::vector<std::string>& env = {}) {
    fs::remove(dir() / "port");
    std::vector<std::string> args = {KILN_BINARY, "serve", "--listen", "127.0.0.1:0", "--port-file",
                                     (dir() / "port").string(), "--data-dir", (dir() / "data").string(),
                                     "--executor", "local"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<std::string> environment = {"KILN_SERVE_TOKENS=" + kToken, "KILN_CACHE_DIR=" + (dir() / "cache").string()};
    environment.insert(environment.end(), env.begin(), env.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      for (const auto& e : environment) ::putenv(const_cast<char*>((new std::string(e))->c_str()));
      std::string log = (dir() / "serve.log").string();
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 200 && !fs::exists(dir() / "port"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(fs::exists(dir() / "port")) << "the server did not start:\n" << log();
    port_ = std::string(util::trim(*util::read_file(dir() / "port")));
  }

  void stop(int sig) {
    if (pid_ <= 0) return;
    ::kill(pid_, sig);
    int status;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  std::string log() { return util::read_file(dir() / "serve.log").value_or(""); }
  std::string url(const std::string& path) { return "http://127.0.0.1:" + port_ + path; }

  // curl: returns the status code and the body.
  struct Http {
    int status;
    std::string body;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
  };
  Http curl(std::vector<std::string> args, bool auth = true) {
    std::vector<std::string> argv = {"/usr/bin/curl", "-s", "-o", "body.out", "-w", "%{http_code}"};
    if (auth) argv.insert(argv.end(), {"-H", "Authorization: Bearer " + kToken});
    argv.insert(argv.end(), args.begin(), args.end());
    Outcome r = run(argv);
    return {std::atoi(r.out.c_str()), util::read_file(dir() / "body.out").value_or("")};
  }
  Http submit(const fs::path& model, const std::string& options) {
    return curl({"-F", "model=@" + model.string(), "-F", "options=" + options, url("/v1/jobs")});
  }
  nlohmann::json wait_for(const std::string& id, const std::vector<std::string>& states, int seconds = 120) {
    nlohmann::json j;
    for (int i = 0; i < seconds * 10; ++i) {
      j = curl({url("/v1/jobs/" + id)}).json();
      if (std::find(states.begin(), states.end(), j.value("state", "")) != states.end()) return j;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "job " << id << " never reached the state; last: " << j.dump() << "\n" << log();
    return j;
  }
  // A compiler that sleeps for the seconds in `delay` and writes a module;
  // for the outcomes that need a slow compile on demand.
  fs::path slow_toolchain(int seconds) {
    write("slow-iree/delay", std::to_string(seconds));
    write("slow-iree/iree-compile",
          "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'IREE compiler version 3.13.0rc20261016 @ 0123abcd'; exit 0; fi\n"
          "echo $$ >> \"" + (dir() / "compiler.pids").string() + "\"\n"
          "sleep $(cat \"" + (dir() / "slow-iree/delay").string() + "\")\n"
          "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && printf 'module' > \"$2\"; shift; done\n");
    ::chmod((dir() / "slow-iree/iree-compile").c_str(), 0755);
    return dir() / "slow-iree";
  }

  // A raw TCP connection to the server, for clients that misbehave.
  int connect_raw() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(std::stoi(port_)));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  // True when the server closed `fd` within `ms` (end of stream or reset).
  static bool closed_within(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    char c;
    return ::recv(fd, &c, 1, 0) <= 0;
  }

  // /proc/PID/stat after the command name: "S PPID ...", or empty when
  // the process is gone. (Read as a stream: /proc files have no size.)
  static std::string stat_of(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = text.rfind(')');
    return paren == std::string::npos ? "" : text.substr(paren + 2);
  }
  // The processes whose parent is `pid` and that still run.
  static std::vector<pid_t> children_of(pid_t pid) {
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string stat = stat_of(std::stoi(name));
      if (stat.size() > 2 && stat[0] != 'Z' && std::atoi(stat.c_str() + 2) == pid) out.push_back(std::stoi(name));
    }
    return out;
  }
  // Whether `pid` has ended (a zombie counts: it no longer runs).
  static bool ended(pid_t pid) {
    std::string stat = stat_of(pid);
    return stat.empty() || stat[0] == 'Z';
  }

  pid_t pid_ = -1;
  std::string port_;
};

TEST_F(Serve, HappyPath) {
  start();
  EXPECT_EQ(curl({url("/healthz")}, false).status, 200);
  EXPECT_EQ(curl({url("/readyz")}, false).status, 200);
  Http accepted = submit(model("mlp.mlir"), R"({"targets": ["cpu", "cuda:h100"], "options": {"opt_level": "O2"}})");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  std::string id = accepted.json()["id"];
  EXPECT_EQ(accepted.json()["state"], "queued");
  auto done = wait_for(id, {"succeeded", "failed"});
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  EXPECT_GT(done["run_seconds"].get<double>(), 0);
  ASSERT_EQ(done["units"].size(), 2u);
  for (const auto& unit : done["units"]) {
    Http module = curl({url(unit["links"]["module"].get<std::string>())});
    EXPECT_EQ(module.status, 200);
    EXPECT_EQ(util::sha256_hex(module.body), unit["sha256"]);
    Http meta = curl({url(unit["links"]["metadata"].get<std::string>())});
    EXPECT_EQ(meta.json()["format"], "kiln-module-metadata");
  }
  EXPECT_EQ(curl({url("/v1/jobs/" + id + "/artifacts/..%2F..%2Fkiln.db")}).status, 404);
  EXPECT_EQ(curl({url("/v1/jobs/" + id + "/artifacts/model.mlir")}).status, 404) << "only recorded artifacts";
  EXPECT_EQ(curl({url("/v1/targets")}).json()["iree_release"], "3.13.0");
  EXPECT_EQ(curl({url("/v1/openapi.json")}).json()["openapi"], "3.0.3");
  Http metrics = curl({url("/metrics")});
  EXPECT_NE(metrics.body.find("kiln_jobs{state=\"succeeded\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kiln_compile_duration_seconds_count 2"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("kiln_cache_misses_total 2"), std::string::npos) << metrics.body;
  // The same job again is served from the cache.
  std::string again = submit(model("mlp.mlir"), R"({"targets": ["cpu"], "options": {"opt_level": "O2"}})").json()["id"];
  EXPECT_EQ(wait_for(again, {"succeeded"})["units"][0]["cache_hit"], true);
  EXPECT_EQ(curl({url("/v1/jobs")}).json()["jobs"].size(), 2u);
}

TEST_F(Serve, BindGivesOneStaticModulePerTargetAndBinding) {
  start();
  Http accepted = submit(model("classifier_poly.mlir"), R"({"targets": ["cpu"], "options": {"bind": [{"b": 5}, {"b": 64}]}})");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  auto done = wait_for(accepted.json()["id"], {"succeeded", "failed"});
  ASSERT_EQ(done["state"], "succeeded") << done.dump();
  ASSERT_EQ(done["units"].size(), 2u) << done.dump();
  EXPECT_EQ(done["units"][0]["binding"], nlohmann::json({{"b", 5}}));
  EXPECT_EQ(done["units"][0]["module"], "model.b5.cpu-host.vmfb");
  EXPECT_EQ(done["units"][1]["binding"], nlohmann::json({{"b", 64}}));
  Http module = curl({url(done["units"][0]["links"]["module"].get<std::string>())});
  ASSERT_EQ(module.status, 200);
  write("b5.vmfb", module.body);
  Http meta = curl({url(done["units"][0]["links"]["metadata"].get<std::string>())});
  ASSERT_EQ(meta.status, 200);
  write("b5.json", meta.body);
  Outcome v = kiln({"validate", "b5.vmfb", "--inputs", model("classifier_poly.b5.inputs.npz").string(), "--expected",
                    model("classifier_poly.b5.expected.npz").string()});
  EXPECT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("binding: b=5"), std::string::npos) << v.out;
  // Checked as job files are, at submission.
  Http twice = submit(model("classifier_poly.mlir"), R"({"targets": ["cpu"], "options": {"bind": [{"b": 5}, {"b": 5}]}})");
  EXPECT_EQ(twice.status, 400) << twice.body;
  EXPECT_NE(twice.body.find("repeats /options/bind/0"), std::string::npos) << twice.body;
  Http zero = submit(model("classifier_poly.mlir"), R"({"targets": ["cpu"], "options": {"bind": [{"b": 0}]}})");
  EXPECT_EQ(zero.status, 400) << zero.body;
  EXPECT_NE(zero.body.find("/options/bind/0/b"), std::string::npos) << zero.body;
  // A name the program does not have fails the unit with the names it has.
  Http unknown = submit(model("classifier_poly.mlir"), R"({"targets": ["cpu"], "options": {"bind": [{"n": 3}]}})");
  ASSERT_EQ(unknown.status, 202) << unknown.body;
  auto failed = wait_for(unknown.json()["id"], {"succeeded", "failed"});
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_NE(failed.dump().find("symbolic dimensions are b"), std::string::npos) << failed.dump();
  EXPECT_EQ(failed["units"][0]["binding"], nlohmann::json({{"n", 3}}));
}

TEST_F(Serve, AnUploadWhoseErrorQuotesAMegabyteLineFailsTheJobNotTheService) {
  start();
  pid_t before = pid_;
  std::string values;
  for (int i = 0; i < 20000; ++i) values += (i ? ", " : "") + std::to_string(i) + ".5";
  write("long.mlir", "func.func @main() -> tensor<3xf32> {\n  %0 = stablehlo.constant dense<[" + values +
                         "]> : tensor<3xf32>\n  return %0 : tensor<3xf32>\n}\n");
  Http accepted = submit(dir() / "long.mlir", R"({"targets": ["cpu"]})");
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  auto done = wait_for(accepted.json()["id"], {"succeeded", "failed"});
  EXPECT_EQ(done["state"], "failed") << done.dump().substr(0, 500);
  EXPECT_NE(done.dump().find("more characters cut"), std::string::npos) << done.dump().substr(0, 2000);
  // The saved compile log is named by its file name, never by the server's path.
  EXPECT_NE(done.dump().find("model.cpu-host.log"), std::string::npos) << done.dump().substr(0, 2000);
  EXPECT_EQ(done.dump().find("/out/model.cpu-host.log"), std::string::npos) << done.dump().substr(0, 2000);
  EXPECT_EQ(curl({url("/healthz")}, false).status, 200) << "the service stays up";
  EXPECT_EQ(pid_, before);
  EXPECT_EQ(::kill(pid_, 0), 0) << "the same process still runs";
}

TEST_F(Serve, Tokens) {
  start();
  EXPECT_EQ(curl({url("/v1/jobs")}, false).status, 401);
  EXPECT_EQ(curl({url("/metrics")}, false).status, 401);
  EXPECT_EQ(curl({"-H", "Authorization: Bearer wrong-token-wrong-token", url("/v1/jobs")}, false).status, 401);
  EXPECT_EQ(curl({"-H", "Authorization: Basic " + kToken, url("/v1/jobs")}, false).status, 401);
  Http upload = curl({"-F", "model=@" + model("mlp.mlir").string(), url("/v1/jobs")}, false);
  EXPECT_EQ(upload.status, 401);
  EXPECT_EQ(upload.json()["error"]["code"], "unauthenticated");
  EXPECT_EQ(curl({url("/healthz")}, false).status, 200);
  Outcome no_tokens = kiln({"serve", "--listen", "127.0.0.1:0"}, {"KILN_SERVE_TOKENS="});
  EXPECT_EQ(no_tokens.status, 2);
  EXPECT_NE(no_tokens.err.find("no bearer tokens"), std::string::npos) << no_tokens.err;
}

TEST_F(Serve, BadSubmissions) {
  start({"--max-upload", "1M"});
  Http big = submit(model("big_constant.mlir"), R"({"targets": ["cpu"]})");
  EXPECT_EQ(big.status, 413) << big.body;
  struct Case {
    std::string options;
    const char* says;
  } cases[] = {{"{not json", "not a JSON object"},
               {R"({"targets": ["cuda:b200"]})", "nearest working choice"},
               {R"({"targets": ["tpu:v5"]})", "at /targets/0"},
               {R"({"targets": ["cpu"], "options": {"opt_level": "O9"}})", "/options/opt_level"},
               {R"({"targets": ["cpu"], "output_dir": "/etc"})", "no inputs or output_dir"},
               // Compiler flags that would write or read files the client names.
               {R"({"targets": ["cpu"], "options": {"extra_flags": ["-o=/tmp/owned.vmfb"]}})", "kiln sets the output"},
               {R"({"targets": ["cpu"], "options": {"extra_flags": ["--iree-hal-dump-executable-sources-to=/tmp/x"]}})",
                "not accepted by the service"},
               {R"({"targets": ["cpu"], "options": {"extra_flags": ["--iree-hal-substitute-executable-configurations-from=/etc"]}})",
                "not accepted by the service"},
               {R"({"targets": ["cpu"], "options": {"extra_flags": ["--mlir-print-ir-after-all"]}})", "not accepted by the service"},
               {R"({"targets": ["cpu"], "options": {"precision": "tf32"}})", "/options/precision"}};
  for (const auto& c : cases) {
    Http r = submit(model("mlp.mlir"), c.options);
    EXPECT_EQ(r.status, 400) << c.options << ": " << r.body;
    EXPECT_NE(r.body.find(c.says), std::string::npos) << c.options << ": " << r.body;
  }
  // Nesting that would exhaust the stack of a recursive parser (400 KB, sent
  // from a file: it is longer than one command-line argument may be).
  write("deep.json", R"({"targets": ["cpu"], "options": {"x": )" + std::string(200000, '[') + std::string(200000, ']') + "}}");
  Http deep = curl({"-F", "model=@" + model("mlp.mlir").string(), "-F", "options=<deep.json", url("/v1/jobs")});
  EXPECT_EQ(deep.status, 400) << deep.body.substr(0, 300);
  EXPECT_NE(deep.body.find("levels deep"), std::string::npos) << deep.body.substr(0, 300);
  write("garbage.mlir", "this is not a program");
  Http garbage = submit(dir() / "garbage.mlir", R"({"targets": ["cpu"]})");
  EXPECT_EQ(garbage.status, 400);
  EXPECT_NE(garbage.body.find("not readable StableHLO"), std::string::npos) << garbage.body;
  EXPECT_EQ(curl({"-d", "x=1", url("/v1/jobs")}).status, 400) << "not multipart";
  EXPECT_EQ(curl({url("/v1/jobs/0123456789abcdef0123456789abcdef")}).status, 404);
  EXPECT_EQ(curl({url("/v1/nothing")}).status, 404);
  EXPECT_EQ(curl({"-X", "DELETE", url("/v1/jobs")}).status, 405);
  EXPECT_EQ(curl({url("/healthz")}, false).status, 200) << "the service stays up";
}

TEST_F(Serve, ManyConcurrentSubmissions) {
  start({"--workers", "2"});
  std::string script;
  for (int i = 0; i < 16; ++i) {
    script += "curl -s -o sub" + std::to_string(i) + " -w '%{http_code}\\n' -H 'Authorization: Bearer " + kToken +
              "' -F model=@" + model(i % 2 ? "conv.mlir" : "mlp.mlir").string() +
              " -F 'options={\"targets\": [\"cpu\"]}' " + url("/v1/jobs") + " & ";
  }
  Outcome r = run({"/bin/sh", "-c", script + "wait"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 16);
  EXPECT_EQ(r.out.find_first_not_of("202\n"), std::string::npos) << r.out;
  for (int i = 0; i < 16; ++i) {
    auto body = util::read_file(dir() / ("sub" + std::to_string(i)));
    ASSERT_TRUE(body) << "submission " << i << " got no response body; curl printed:\n" << r.out << r.err << log();
    auto id = nlohmann::json::parse(*body)["id"].get<std::string>();
    EXPECT_EQ(wait_for(id, {"succeeded", "failed"})["state"], "succeeded");
  }
}

TEST_F(Serve, FullQueueSays429WithRetryAfter) {
  fs::path tools = slow_toolchain(3);
  start({"--workers", "1", "--max-queue", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  ASSERT_EQ(submit(model("mlp.mlir"), R"({"targets": ["cpu"]})").status, 202);
  // The first is claimed by the worker; the next waits; the third is refused.
  for (int i = 0; i < 50 && !fs::exists(dir() / "compiler.pids"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(submit(model("mlp.mlir"), R"({"targets": ["cpu"]})").status, 202);
  Outcome refused = run({"/usr/bin/curl", "-s", "-i", "-H", "Authorization: Bearer " + kToken, "-F",
                         "model=@" + model("mlp.mlir").string(), url("/v1/jobs")});
  EXPECT_NE(refused.out.find("HTTP/1.1 429"), std::string::npos) << refused.out;
  EXPECT_NE(util::to_lower(refused.out).find("retry-after: "), std::string::npos) << refused.out;
}

TEST_F(Serve, CancelStopsTheCompiler) {
  fs::path tools = slow_toolchain(60);
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  std::string running = submit(model("mlp.mlir"), R"({"targets": ["cpu"]})").json()["id"];
  std::string queued = submit(model("conv.mlir"), R"({"targets": ["cpu"]})").json()["id"];
  wait_for(running, {"running"});
  for (int i = 0; i < 50 && !fs::exists(dir() / "compiler.pids"); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(curl({"-X", "POST", url("/v1/jobs/" + queued + "/cancel")}).json()["state"], "cancelled");
  curl({"-X", "POST", url("/v1/jobs/" + running + "/cancel")});
  auto cancelled = wait_for(running, {"cancelled", "failed", "succeeded"}, 20);
  EXPECT_EQ(cancelled["state"], "cancelled");
  std::string pid = std::string(util::trim(*util::read_file(dir() / "compiler.pids")));
  EXPECT_FALSE(fs::exists("/proc/" + pid)) << "the compiler was left running";
  EXPECT_EQ(curl({"-X", "POST", url("/v1/jobs/" + running + "/cancel")}).status, 200) << "cancelling twice is fine";
}

TEST_F(Serve, HealthzIsAnsweredWhileManyIdleConnectionsAreHeldOpen) {
  // 300 idle connections from one address, more than both caps: each new
  // one displaces the longest-idle, and /healthz is still answered (it used
  // to be reset for as long as 256 idle connections stayed open).
  start();
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  auto started = std::chrono::steady_clock::now();
  Http health = curl({url("/healthz")}, false);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(health.status, 200) << log();
  EXPECT_LT(ms, 2000) << "answered, not after a client timeout";
  // The earliest idle connections were closed to make room.
  EXPECT_TRUE(closed_within(idle.front(), 1000));
  for (int fd : idle) ::close(fd);
}

TEST_F(Serve, HeadersThatDoNotArriveInTimeEndTheConnection) {
  start({"--header-timeout", "0.5"});
  int slow = connect_raw();
  ASSERT_GE(slow, 0);
  // Half a request line, then nothing: closed at the deadline.
  ASSERT_GT(::send(slow, "GET /healthz HT", 15, 0), 0);
  EXPECT_TRUE(closed_within(slow, 3000)) << "the connection outlived its header deadline";
  ::close(slow);
  // A keep-alive connection left idle ends the same way; the service answers throughout.
  int idle = connect_raw();
  EXPECT_TRUE(closed_within(idle, 3000));
  ::close(idle);
  EXPECT_EQ(curl({url("/healthz")}, false).status, 200);
}

TEST_F(Serve, SigtermWithConnectionsOpenStopsCleanly) {
  start();
  std::vector<int> open;
  for (int i = 0; i < 20; ++i) open.push_back(connect_raw());
  int partial = connect_raw();
  ASSERT_GT(::send(partial, "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n", 34, 0), 0);
  ::kill(pid_, SIGTERM);
  int status = -1;
  pid_t done = 0;
  for (int i = 0; i < 100 && done == 0; ++i) {
    done = ::waitpid(pid_, &status, WNOHANG);
    if (done == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(done, pid_) << "still running 5 s after SIGTERM with connections open\n" << log();
  pid_ = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << "\n" << log();
  EXPECT_NE(log().find("kiln serve: stopped"), std::string::npos) << log();
  for (int fd : open) EXPECT_TRUE(closed_within(fd, 1000));
  EXPECT_TRUE(closed_within(partial, 1000));
  for (int fd : open) ::close(fd);
  ::close(partial);
}

TEST_F(Serve, AJobThatCrashesTheServiceFailsOnTheFirstCrashAndIsNotRunAgain) {
  // A fatal signal of the service's own (here SIGSEGV, as kiln's own code
  // would raise it while handling what a job brought) is recorded with the
  // jobs in flight: after the restart that job has failed with the reason,
  // and the job queued behind it runs. (SIGKILL re-queues: the next test.)
  fs::path tools = slow_toolchain(30);
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  Http first = submit(model("mlp.mlir"), R"({"targets": ["cpu"]})");
  Http second = submit(model("conv.mlir"), R"({"targets": ["cpu"]})");
  ASSERT_EQ(first.status, 202) << first.body;
  ASSERT_EQ(second.status, 202) << second.body;
  std::string crashing = first.json()["id"], queued = second.json()["id"];
  wait_for(crashing, {"running"});
  ::kill(pid_, SIGSEGV);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV) << "the crash keeps its default outcome: " << status;
  write("slow-iree/delay", "0");
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  auto failed = wait_for(crashing, {"failed", "succeeded"});
  EXPECT_EQ(failed["state"], "failed") << failed.dump();
  EXPECT_EQ(failed["attempts"], 1) << "not run again";
  EXPECT_NE(failed.dump().find("kiln serve crashed (Segmentation fault) while compiling this job"), std::string::npos)
      << failed.dump();
  EXPECT_EQ(wait_for(queued, {"succeeded", "failed"})["state"], "succeeded");
  EXPECT_FALSE(fs::exists(dir() / "data/crash.record")) << "the record is consumed";
}

TEST_F(Serve, KillNineAndRestartLosesNoJob) {
  fs::path tools = slow_toolchain(30);
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  std::vector<std::string> ids;
  for (const char* m : {"mlp.mlir", "conv.mlir", "attention.mlir"}) {
    Http r = submit(model(m), R"({"targets": ["cpu"]})");
    ASSERT_EQ(r.status, 202) << r.body;
    ids.push_back(r.json()["id"]);
  }
  wait_for(ids[0], {"running"});
  stop(SIGKILL);
  write("slow-iree/delay", "0");
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  EXPECT_NE(log().find("1 interrupted job(s) re-queued"), std::string::npos) << log();
  for (const auto& id : ids) {
    auto j = wait_for(id, {"succeeded", "failed"});
    EXPECT_EQ(j["state"], "succeeded") << j.dump();
  }
  EXPECT_EQ(curl({url("/v1/jobs/" + ids[0])}).json()["attempts"], 2) << "started before and after the crash";
}

TEST_F(Serve, SigtermMidCompileLosesNoJobAndNeverSucceedsWithoutAllUnits) {
  // The real compiler, two targets a job, distinct programs (no cache hits):
  // SIGTERM as soon as the first compiler runs, with no grace period, so
  // that running units are stopped. After a restart on the same data
  // every job has succeeded with both modules downloadable. (SIGTERM used
  // to interrupt the compiles and record their jobs as succeeded with the
  // units done so far, and the worker went on "succeeding" queued jobs.)
  std::string text = *util::read_file(fs::path(KILN_SOURCE_DIR) / "examples/mlp.mlir");
  start({"--workers", "1", "--grace", "0"});
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    write("m" + std::to_string(i) + ".mlir", text + "\n// variant " + std::to_string(i) + "\n");
    Http r = submit(dir() / ("m" + std::to_string(i) + ".mlir"), R"({"targets": ["cpu", "cuda:h100"]})");
    ASSERT_EQ(r.status, 202) << r.body;
    ids.push_back(r.json()["id"]);
  }
  for (int i = 0; i < 600 && children_of(pid_).empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_FALSE(children_of(pid_).empty()) << "no compiler started\n" << log();
  stop(SIGTERM);
  EXPECT_NE(log().find("queued again (interrupted by shutdown)"), std::string::npos) << log();
  start({"--workers", "1"});
  for (const auto& id : ids) {
    auto j = wait_for(id, {"succeeded", "failed", "cancelled"}, 300);
    ASSERT_EQ(j["state"], "succeeded") << j.dump();
    ASSERT_EQ(j["units"].size(), 2u) << j.dump();
    for (const auto& unit : j["units"]) {
      EXPECT_TRUE(unit["ok"].get<bool>()) << unit.dump();
      Http module = curl({url(unit["links"]["module"].get<std::string>())});
      EXPECT_EQ(module.status, 200);
      EXPECT_EQ(util::sha256_hex(module.body), unit["sha256"]) << unit.dump();
    }
  }
}

TEST_F(Serve, SigtermLetsRunningCompilesFinishWithinTheGracePeriod) {
  // The running job finishes during the grace period and is recorded as
  // succeeded; the queued one is not started and stays queued.
  fs::path tools = slow_toolchain(2);
  start({"--workers", "1", "--grace", "20"}, {"KILN_IREE_DIR=" + tools.string()});
  std::string running = submit(model("mlp.mlir"), R"({"targets": ["cpu"]})").json()["id"];
  std::string queued = submit(model("conv.mlir"), R"({"targets": ["cpu"]})").json()["id"];
  wait_for(running, {"running"});
  stop(SIGTERM);
  EXPECT_NE(log().find("job " + running + " succeeded"), std::string::npos) << log();
  EXPECT_EQ(log().find("running job " + queued), std::string::npos) << "started after the stop began\n" << log();
  write("slow-iree/delay", "0");
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + tools.string()});
  auto j = wait_for(running, {"succeeded", "failed"});
  EXPECT_EQ(j["attempts"], 1) << "not run again: " << j.dump();
  EXPECT_EQ(wait_for(queued, {"succeeded", "failed"})["state"], "succeeded");
}

TEST_F(Serve, KillNineLeavesNoCompilerRunning) {
  // A compiler that would run for a minute: kill -9 of the service ends it
  // within 2 s (the parent-death signal set before exec).
  write("stuck-iree/iree-compile",
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'IREE compiler version 3.13.0rc20261016 @ 0123abcd'; exit 0; fi\n"
        "echo $$ >> \"" + (dir() / "compiler.pids").string() + "\"\nexec sleep 60\n");
  ::chmod((dir() / "stuck-iree/iree-compile").c_str(), 0755);
  start({"--workers", "1"}, {"KILN_IREE_DIR=" + (dir() / "stuck-iree").string()});
  std::string id = submit(model("mlp.mlir"), R"({"targets": ["cpu"]})").json()["id"];
  std::string pids;
  for (int i = 0; i < 300 && pids.empty(); ++i) {
    pids = std::string(util::trim(util::read_file(dir() / "compiler.pids").value_or("")));
    if (pids.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(pids.empty()) << log();
  pid_t compiler = std::stoi(pids);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // it is sleep by now
  ASSERT_FALSE(ended(compiler));
  stop(SIGKILL);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!ended(compiler) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  bool gone = ended(compiler);
  if (!gone) ::kill(compiler, SIGKILL);
  EXPECT_TRUE(gone) << "the compiler outlived kill -9 of kiln serve by 2 s";
}

TEST_F(Serve, ManyDuplicateTargetsAreRefusedAtOnceWithASmallBody) {
  // 10,000 copies of one target: kiln's own check refuses the first
  // duplicate before the schema (which reported every pair) runs.
  start();
  std::string targets = "[";
  for (int i = 0; i < 10000; ++i) targets += std::string(i ? "," : "") + "\"cpu\"";
  write("options.json", "{\"targets\": " + targets + "]}");
  auto started = std::chrono::steady_clock::now();
  Http r = curl({"-F", "model=@" + model("mlp.mlir").string(), "-F", "options=<" + (dir() / "options.json").string(),
                 url("/v1/jobs")});
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 500);
  EXPECT_LT(r.body.size(), 4096u);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("at /targets/1: \"cpu\" repeats /targets/0"),
            std::string::npos)
      << r.body;
  EXPECT_LT(seconds, 5) << "answered at once, not after checking every pair";
  Http bind = submit(model("classifier_poly.mlir"), R"({"targets": ["cpu"], "options": {"bind": [{"b": 5}, {"b": 5}]}})");
  EXPECT_EQ(bind.status, 400);
  EXPECT_NE(bind.body.find("/options/bind/1"), std::string::npos) << bind.body;
  std::string many = "[";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"cpu:x86-64-v" + std::to_string(i) + "\"";
  Http over = submit(model("mlp.mlir"), "{\"targets\": " + many + "]}");
  EXPECT_EQ(over.status, 400);
  EXPECT_NE(over.body.find("at most 64 targets"), std::string::npos) << over.body;
}

TEST_F(Serve, BytesThatAreNotUtf8AreNeverA500) {
  start();
  for (const std::string& options : {std::string("{\"targets\": [\"cpu\xff\"]}"), std::string("{\"tar\xffgets\": [\"cpu\"]}"),
                                     std::string("{\"targets\": [\"cpu\"], \"options\": {\"extra_flags\": [\"--iree-\xff\"]}}")}) {
    write("options.bin", options);
    Http r = curl({"-F", "model=@" + model("mlp.mlir").string(), "-F", "options=<" + (dir() / "options.bin").string(),
                   url("/v1/jobs")});
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_FALSE(r.json().is_discarded()) << r.body;
  }
  Http path = curl({url("/v1/jobs/\xff\xfe")});
  EXPECT_TRUE(path.status == 404 || path.status == 400) << path.status << " " << path.body;
  EXPECT_FALSE(path.json().is_discarded()) << path.body;
  // A compile that fails on a line carrying a byte that is not UTF-8 ends
  // compile_failed with the compiler's diagnostics, not internal.
  write("bad.mlir", "func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> { // \xff\n  %0 = stablehlo.nonsense %a : "
                    "tensor<4xf32> // \xff\xfe\n  return %0 : tensor<4xf32>\n}\n");
  Http bad = submit(dir() / "bad.mlir", R"({"targets": ["cpu"]})");
  if (bad.status == 202) {
    auto j = wait_for(bad.json()["id"], {"failed", "succeeded"});
    EXPECT_EQ(j["error"]["code"], "compile_failed") << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    EXPECT_EQ(bad.status, 400) << bad.body;
  }
  std::string metrics = curl({url("/metrics")}).body;
  EXPECT_NE(metrics.find("kiln_http_responses_total{code=\"400\"} "), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("code=\"500\""), std::string::npos) << metrics;
}

TEST_F(Serve, MalformedFramingGetsItsStatusNotASilentClose) {
  start();
  auto status_of = [&](const std::string& request) {
    int fd = connect_raw();
    EXPECT_GE(fd, 0);
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    std::string reply;
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 3000) > 0) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return reply.size() > 12 ? std::atoi(reply.substr(9, 3).c_str()) : 0;
  };
  std::string auth = "Authorization: Bearer " + kToken + "\r\n";
  EXPECT_EQ(status_of("POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: abc\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth +
                      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400);
  EXPECT_EQ(status_of("POST /v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501);
  EXPECT_EQ(status_of("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(100 << 10, 'a') + "\r\n\r\n"), 431);
  EXPECT_EQ(status_of("GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n"), 505);
  static const char kNul[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\n\r\n";
  EXPECT_EQ(status_of(std::string(kNul, sizeof kNul - 1)), 400);
  // The scheme is case-insensitive.
  EXPECT_EQ(curl({"-H", "Authorization: bearer " + kToken, url("/v1/jobs")}, false).status, 200);
  EXPECT_EQ(curl({"-H", "Authorization: BEARER " + kToken, url("/v1/jobs")}, false).status, 200);
}

TEST_F(Serve, HealthzIsAnsweredWhileSlowUploadsHoldEverySlot) {
  // 300 authenticated uploads declaring 200 MB and sending a byte a
  // second: uploads take at most 7/8 of the connection caps, so /healthz
  // keeps being answered; and an upload slower than the minimum rate (on
  // bytes received) is dropped after --body-timeout.
  start({"--body-timeout", "3"});
  std::string head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken +
                     "\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 200000000\r\n\r\n";
  std::vector<int> slow;
  for (int i = 0; i < 300; ++i) {
    int fd = connect_raw();
    ASSERT_GE(fd, 0);
    (void)::send(fd, head.data(), head.size(), MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  double worst_ms = 0;
  int answered = 0, probes = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < until) {
    for (int fd : slow) (void)::send(fd, "-", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    ++probes;
    auto started = std::chrono::steady_clock::now();
    int fd = connect_raw();
    std::string reply;
    if (fd >= 0) {
      std::string probe = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      (void)::send(fd, probe.data(), probe.size(), MSG_NOSIGNAL);
      char buf[1024];
      pollfd p{fd, POLLIN, 0};
      while (reply.find("\r\n\r\n") == std::string::npos && ::poll(&p, 1, 2000) > 0) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
      }
      ::close(fd);
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    if (reply.rfind("HTTP/1.1 200", 0) == 0) ++answered;
    worst_ms = std::max(worst_ms, ms);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(answered, probes) << "worst probe " << worst_ms << " ms\n" << log();
  EXPECT_LT(worst_ms, 1000);
  // Past the body deadline, the trickling uploads are gone.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  int dropped = 0;
  for (int fd : slow) {
    // Whatever the server answered (a 429 for uploads over the slots), then the end.
    char buf[4096];
    pollfd p{fd, POLLIN, 0};
    ssize_t n = 1;
    while (n > 0 && ::poll(&p, 1, 10) > 0) n = ::recv(fd, buf, sizeof buf, 0);
    dropped += n <= 0 ? 1 : 0;
  }
  EXPECT_EQ(dropped, 300) << "uploads below the minimum rate were kept";
  for (int fd : slow) ::close(fd);
}

}  // namespace
}  // namespace kiln::testing
