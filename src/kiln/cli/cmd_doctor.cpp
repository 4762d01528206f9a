#include <dlfcn.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include <fmt/format.h>

#include "kiln/cache/store.h"
#include "kiln/cli/cache_setting.h"
#include "kiln/cli/parse.h"
#include "kiln/docker/container_executor.h"
#include "kiln/version.h"
#include "kiln/target/target.h"
#include "kiln/toolchain/toolchain.h"
#include "kiln/util/file.h"
#include "kiln/util/orphans.h"
#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"

namespace kiln::cli {
namespace {

namespace fs = std::filesystem;

struct Check {
  std::string name;
  std::string status;  // "ok", "warning", "error"
  std::string detail;
  std::string fix;
};

std::string on_path(const std::string& program) { return util::find_program(program).string(); }

bool socket_answers(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void check_compiler(const toolchain::Toolchain& tools, std::vector<Check>& checks);
void check_runtime(const toolchain::Toolchain& tools, std::vector<Check>& checks);

void check_toolchain(const config::Config& config, std::vector<Check>& checks) {
  auto tools = toolchain::find(config);
  if (!tools) {
    checks.push_back({"IREE compiler", "error", tools.error().message,
                      "run scripts/setup.sh, or set KILN_IREE_DIR to a Python environment with "
                      "iree-base-compiler==" + std::string(toolchain::pinned_release())});
    return;
  }
  if (tools->compile.empty()) {
    checks.push_back({"IREE compiler", "error",
                      "not installed: " + tools->root.string() + " holds only the runtime (modules can run here)",
                      "to compile here, install iree-base-compiler==" + std::string(toolchain::pinned_release())});
  } else {
    check_compiler(*tools, checks);
  }
  check_runtime(*tools, checks);
}

void check_compiler(const toolchain::Toolchain& t, std::vector<Check>& checks) {
  const toolchain::Toolchain* tools = &t;
  bool pinned = tools->release == toolchain::pinned_release();
  checks.push_back({"IREE compiler", pinned ? "ok" : "error",
                    fmt::format("release {} (build {}, revision {}) at {}, found by {}", tools->release, tools->build,
                                tools->revision.substr(0, 12), tools->compile.string(), tools->found_by),
                    pinned ? "" : fmt::format("install iree-base-compiler=={} (kiln knows that release's flags)",
                                              toolchain::pinned_release())});
  auto run = util::run_process({.argv = {tools->compile.string(), "--version"}, .timeout = std::chrono::seconds(60)});
  if (!run || !run->ok()) {
    checks.push_back({"iree-compile runs", "error",
                      run ? util::describe_outcome(*run) + ": " + std::string(util::trim(run->err)) : run.error().message,
                      "reinstall the toolchain: rm -rf .venv && scripts/setup.sh"});
  }
}

void check_runtime(const toolchain::Toolchain& t, std::vector<Check>& checks) {
  const toolchain::Toolchain* tools = &t;
  if (tools->run_module.empty()) {
    checks.push_back({"IREE runtime", "warning", "iree-base-runtime is not installed next to the compiler",
                      "pip install iree-base-runtime==" + std::string(toolchain::pinned_release()) +
                          " (needed to run and benchmark modules)"});
  } else {
    bool same = tools->compile.empty() || tools->runtime_release == tools->release;
    checks.push_back({"IREE runtime", same ? "ok" : "error",
                      fmt::format("release {} at {}", tools->runtime_release, tools->run_module.parent_path().string()),
                      same ? "" : "install the same release of iree-base-runtime as the compiler: modules only load "
                                  "in the runtime of the release that built them"});
  }
}

void check_image(const config::Settings& settings, std::vector<Check>& checks) {
  std::string image = settings.docker_image.empty() ? std::string("kiln-cpu:") + KILN_VERSION : settings.docker_image;
  auto executor = docker::ContainerExecutor::from_settings(settings);
  if (executor) {
    checks.push_back({"kiln image", "ok",
                      fmt::format("{} holds IREE {} ({})", image, (*executor)->toolchain().release,
                                  (*executor)->toolchain().build),
                      ""});
  } else {
    checks.push_back({"kiln image", "warning", executor.error().message,
                      "only needed for --executor docker: KILN_LOCAL_BASE=1 scripts/build-images.sh cpu"});
  }
}

void check_docker(std::vector<Check>& checks) {
  std::string cli = on_path("docker");
  std::string socket = "/var/run/docker.sock";
  if (const char* host = std::getenv("DOCKER_HOST"); host && util::starts_with(host, "unix://")) socket = host + 7;
  bool daemon = socket_answers(socket);
  if (daemon) {
    checks.push_back({"Docker", "ok", "engine answers on " + socket + (cli.empty() ? "" : "; CLI at " + cli), ""});
  } else {
    checks.push_back({"Docker", "warning",
                      (cli.empty() ? "no docker CLI on PATH and " : "CLI at " + cli + ", but ") +
                          std::string("no engine answers on ") + socket,
                      "only needed for container compiles: start dockerd, or install Docker Engine"});
  }
}

// One check per GPU that nvidia-smi lists, saying which kiln target fits it.
bool check_gpus(std::vector<Check>& checks) {
  std::string smi = on_path("nvidia-smi");
  if (smi.empty()) return false;
  auto run = util::run_process({.argv = {smi, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"},
                                .timeout = std::chrono::seconds(30)});
  if (!run || !run->ok()) return false;
  bool any = false;
  for (const auto& line : util::split(run->out, '\n')) {
    auto fields = util::split(line, ',');
    if (fields.size() != 3) continue;
    std::string name(util::trim(fields[0])), driver(util::trim(fields[1])), cap(util::trim(fields[2]));
    std::string sm = "sm_" + cap.substr(0, cap.find('.')) + (cap.find('.') == std::string::npos ? "" : cap.substr(cap.find('.') + 1));
    auto target = target::resolve("cuda:" + sm);
    checks.push_back({"GPU " + name, target ? "ok" : "warning",
                      fmt::format("{}, driver {}{}", sm, driver, target ? "; compile with --target cuda:" + sm : ""),
                      target ? "" : target.error().message});
    any = true;
  }
  return any;
}

void check_nvidia(std::vector<Check>& checks) {
  auto version = util::read_file("/proc/driver/nvidia/version");
  void* cuda = ::dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL);
  if (cuda) ::dlclose(cuda);
  if (check_gpus(checks)) {
    // nvidia-smi answered: the driver is there and each GPU has its line.
  } else if ((version && !util::trim(*version).empty()) || cuda) {
    std::string detail = version && !util::trim(*version).empty() ? std::string(util::trim(util::split(*version, '\n')[0]))
                                                                : "libcuda.so.1 loads";
    checks.push_back({"NVIDIA driver", "ok", detail, ""});
  } else {
    checks.push_back({"NVIDIA driver", "warning", "no NVIDIA kernel driver and no libcuda.so.1 on this host",
                      "CUDA modules still compile here; to run them, use a host with an NVIDIA GPU and driver "
                      "(R535 or newer for the PTX that IREE emits)"});
  }
  std::string ctk = on_path("nvidia-ctk");
  if (ctk.empty()) ctk = on_path("nvidia-container-runtime");
  checks.push_back({"NVIDIA container toolkit", ctk.empty() ? "warning" : "ok",
                    ctk.empty() ? "not installed (nvidia-ctk not on PATH)" : "at " + ctk,
                    ctk.empty() ? "only needed to give containers the GPU: install nvidia-container-toolkit" : ""});
}

// `doctor --clean`: what kiln processes that died left behind, found and
// removed: staging folders in the given output folders, half-made cache
// entries, and containers on the Docker engine. Live processes' work stays.
Result<int> clean(const Context& context, const std::vector<std::string>& folders, bool json) {
  std::vector<std::string> removed;
  for (const auto& f : folders) {
    for (const char* prefix : {".kiln-staging-tune-", ".kiln-staging-"}) {
      for (const auto& p : util::reap_orphans(f, prefix)) removed.push_back(p.string());
    }
  }
  fs::path root = cache_root(context.settings);
  if (fs::exists(root)) {
    auto store = cache::Store::open(root, 0);
    if (store) {
      for (const auto& p : store->reap()) removed.push_back(p.string());
    }
  }
  std::string docker_note;
  if (auto engine = docker::Engine::connect()) {
    auto containers = docker::ContainerExecutor::reap(*engine);
    if (containers) {
      for (const auto& c : *containers) removed.push_back("container " + c);
    } else {
      docker_note = containers.error().message;
    }
  } else {
    docker_note = "no Docker engine: containers not checked";
  }
  if (json) {
    std::cout << nlohmann::json{{"removed", removed}, {"docker", docker_note.empty() ? "checked" : docker_note}}.dump(2) << "\n";
    return 0;
  }
  for (const auto& r : removed) std::cout << "removed " << r << "\n";
  std::cout << fmt::format("{} leftover(s) of kiln processes that are no longer running removed{}\n", removed.size(),
                           docker_note.empty() ? "" : " (" + docker_note + ")");
  return 0;
}

}  // namespace

Result<int> run_doctor(Context& context) {
  CLI::App app{"Check what kiln needs and say how to fix each problem.\n"
               "  kiln doctor [--json]\n"
               "  kiln doctor --clean [FOLDER...]   remove what killed kiln processes left behind",
               "doctor"};
  bool json = false, clean_up = false;
  std::vector<std::string> folders;
  app.add_flag("--json", json, "print JSON");
  app.add_flag("--clean", clean_up, "remove leftovers of kiln processes that are no longer running (staging folders in "
                                    "FOLDERs, default '.'; half-made cache entries; containers) and say what went");
  app.add_option("folders", folders, "output folders to clean (with --clean; default: the current folder)");
  if (KILN_TRY(parse_args(app, context))) return 0;
  if (!folders.empty() && !clean_up) return fail(Code::kInvalidArgument, "folders are only taken with --clean");
  if (clean_up) return clean(context, folders.empty() ? std::vector<std::string>{"."} : folders, json);

  std::vector<Check> checks;
  check_toolchain(context.config, checks);
  check_docker(checks);
  if (checks.back().status == "ok") check_image(context.settings, checks);
  check_nvidia(checks);

  bool errors = std::any_of(checks.begin(), checks.end(), [](const Check& c) { return c.status == "error"; });
  if (json) {
    nlohmann::json out = {{"ok", !errors}, {"pinned_iree_release", toolchain::pinned_release()},
                          {"searched", toolchain::search_locations(context.config)}, {"checks", nlohmann::json::array()}};
    for (const auto& c : checks) {
      out["checks"].push_back({{"name", c.name}, {"status", c.status}, {"detail", c.detail}, {"fix", c.fix}});
    }
    std::cout << out.dump(2) << "\n";
  } else {
    for (const auto& c : checks) {
      std::cout << fmt::format("[{:^7}] {}: {}\n", c.status, c.name, c.detail);
      if (!c.fix.empty()) std::cout << "          fix: " << c.fix << "\n";
    }
    std::cout << (errors ? "\nkiln cannot compile until the errors above are fixed.\n" : "\nkiln is ready to compile.\n");
  }
  return errors ? exit_code(Code::kFailedPrecondition) : 0;
}

}  // namespace kiln::cli
