#include "kiln/docker/container_executor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <fmt/format.h>

#include "kiln/cache/store.h"
#include "kiln/util/file.h"
#include "kiln/util/orphans.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"
#include "kiln/version.h"

namespace kiln::docker {

std::atomic<int> ContainerExecutor::counter_{0};

namespace {

namespace fs = std::filesystem;

constexpr uid_t kImageUser = 10001;  // the image's "kiln" user

// Removes the container when it goes out of scope, whatever happened.
struct Removal {
  const Engine* engine;
  std::string id;
  ~Removal() {
    if (!id.empty()) (void)engine->request("DELETE", "/containers/" + id + "?force=true&v=true", "", 30000);
  }
};

// The container's State. When the engine stops answering (dockerd stopped
// or restarted), waits up to 30 s for it and notes that it was away: it may
// come back with the container still running (live-restore) or stopped.
Result<nlohmann::json> container_state(const Engine& engine, const std::string& id, const std::string& name,
                                       bool& engine_was_away) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto inspected = engine.call("GET", "/containers/" + id + "/json");
  while (!inspected && inspected.error().code == Code::kUnavailable) {
    engine_was_away = true;
    if (util::interrupted() || std::chrono::steady_clock::now() >= until) {
      return fail(Code::kUnavailable,
                  fmt::format("the Docker engine stopped answering while container {} ran the compiler ({}); it was "
                              "stopped or restarted and the compile did not finish. Start the engine again "
                              "(scripts/docker-env.sh does) and run the command again: the container left behind is "
                              "removed then; or compile with --executor local",
                              name, inspected.error().message));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    inspected = engine.call("GET", "/containers/" + id + "/json");
  }
  if (!inspected) return tl::unexpected(inspected.error());
  return (*inspected)["State"];
}

tl::unexpected<Error> stopped_by_restart(const std::string& name, int exit_status) {
  return fail(Code::kUnavailable,
              fmt::format("the Docker engine was restarted while container {} ran the compiler, and the restart "
                          "stopped it (exit status {}): the compile did not finish. Run the command again; to keep "
                          "containers running across engine restarts, enable live-restore in dockerd's settings",
                          name, exit_status));
}

// Creates the container; its id.
Result<std::string> create_container(Engine& engine, const std::string& name, const nlohmann::json& config) {
  auto created = engine.call("POST", "/containers/create?name=" + name, config);
  if (!created) {
    std::string m = created.error().message;
    if (m.find("nvidia") != std::string::npos) {
      return fail(Code::kFailedPrecondition, m + "; give Docker the GPU with the NVIDIA container toolkit "
                                                 "(kiln doctor says what is missing)");
    }
    return tl::unexpected(created.error());
  }
  return (*created)["Id"].get<std::string>();
}

// The tool's own figures, measured inside by `kiln __exec`: its peak RSS in
// KiB (0 when the report is missing). The report is removed.
long read_report(const std::string& report) {
  long peak = 0;
  if (auto text = util::read_file(report)) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_discarded()) peak = j.value("peak_rss_kib", 0L);
    std::error_code ec;
    fs::remove(report, ec);
  }
  return peak;
}

void give_folder(const fs::path& dir, uid_t uid, gid_t gid) {
  std::error_code ec;
  (void)::chown(dir.c_str(), uid, gid);
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) (void)::lchown(e.path().c_str(), uid, gid);
}

// As root, the image's user must own the writable folder while the
// container runs; on every way out, early errors included, its files go
// back to root. Without root, the container runs as the caller: no loan.
class FolderLoan {
 public:
  explicit FolderLoan(fs::path dir) : dir_(std::move(dir)), root_(::geteuid() == 0) {
    if (root_) give_folder(dir_, kImageUser, kImageUser);
  }
  ~FolderLoan() {
    if (root_) give_folder(dir_, 0, 0);
  }
  FolderLoan(const FolderLoan&) = delete;
  FolderLoan& operator=(const FolderLoan&) = delete;

 private:
  fs::path dir_;
  bool root_;
};

}  // namespace

Result<std::unique_ptr<ContainerExecutor>> ContainerExecutor::create(const std::string& image, const Limits& limits) {
  auto engine = KILN_TRY(Engine::connect());
  auto inspected = engine.call("GET", "/images/" + image + "/json");
  if (!inspected) {
    if (inspected.error().code == Code::kNotFound) {
      return fail(Code::kFailedPrecondition,
                  fmt::format("the Docker image {} is not on this engine; build it with scripts/build-images.sh "
                              "(KILN_LOCAL_BASE=1 where no registry is reachable), or set docker_image",
                              image));
    }
    return tl::unexpected(inspected.error());
  }
  const auto& labels = (*inspected)["Config"]["Labels"];
  toolchain::Toolchain t;
  if (labels.is_object()) {
    t.release = labels.value("dev.kiln.iree.release", "");
    t.build = labels.value("dev.kiln.iree.build", "");
    t.revision = labels.value("dev.kiln.iree.revision", "");
  }
  if (t.release.empty()) {
    return fail(Code::kFailedPrecondition, fmt::format("the Docker image {} has no dev.kiln.iree.release label: it is "
                                                       "not a kiln image (scripts/build-images.sh builds one)", image));
  }
  t.compile = "/opt/kiln/bin/iree-compile";
  t.opt = "/opt/kiln/bin/iree-opt";
  t.run_module = "/opt/kiln/bin/iree-run-module";
  t.benchmark_module = "/opt/kiln/bin/iree-benchmark-module";
  t.runtime_release = t.release;
  t.found_by = "Docker image " + image;
  t.root = "/opt/kiln/iree";
  // What dead kiln processes left on this engine goes first; a failure to
  // clean up is not this process's failure.
  (void)reap(engine);
  return std::unique_ptr<ContainerExecutor>(new ContainerExecutor(std::move(engine), image, limits, std::move(t)));
}

Result<std::vector<std::string>> ContainerExecutor::reap(Engine& engine) {
  // filters={"label":["dev.kiln.executor=1"]}, URL-encoded.
  auto listed = KILN_TRY(engine.call("GET", "/containers/json?all=true&filters=%7B%22label%22%3A%5B%22dev.kiln.executor%3D1%22%5D%7D"));
  std::vector<std::string> removed;
  if (!listed.is_array()) return removed;
  for (const auto& c : listed) {
    if (!c.is_object() || !c.contains("Labels") || !c["Labels"].is_object() || !c.contains("Id")) continue;
    const auto& labels = c["Labels"];
    std::string owner = labels.value("dev.kiln.owner", "");
    if (owner.empty()) {
      // Containers of an older kiln carry only the pid: dead if no process
      // has it any more.
      std::string pid = labels.value("dev.kiln.parent-pid", "");
      if (pid.empty() || fs::exists("/proc/" + pid)) continue;
    } else if (util::owner_alive(owner)) {
      continue;
    }
    std::string id = c["Id"].get<std::string>();
    if (engine.request("DELETE", "/containers/" + id + "?force=true&v=true", "", 30000)) {
      std::string name = c.contains("Names") && c["Names"].is_array() && !c["Names"].empty() && c["Names"][0].is_string()
                             ? c["Names"][0].get<std::string>() : id.substr(0, 12);
      removed.push_back(name);
    }
  }
  return removed;
}

Result<std::unique_ptr<ContainerExecutor>> ContainerExecutor::from_settings(const config::Settings& settings) {
  Limits limits;
  limits.memory_bytes = settings.docker_memory;
  if (settings.docker_cpus) limits.cpus = *settings.docker_cpus;
  limits.pids = settings.docker_pids;
  limits.tmpfs_size = settings.docker_tmpfs;
  std::string image = settings.docker_image;
  if (image.empty()) image = std::string("kiln-cpu:") + KILN_VERSION;
  return create(image, limits);
}

nlohmann::json ContainerExecutor::container_config(const compile::ExecRequest& request, const std::string& report) const {
  std::vector<std::string> cmd = {"/opt/kiln/bin/kiln", "__exec", "--report", report, "--"};
  cmd.insert(cmd.end(), request.argv.begin(), request.argv.end());
  nlohmann::json binds = nlohmann::json::array();
  auto read_only = [&](const fs::path& p) {
    fs::path abs = fs::absolute(p);
    binds.push_back(abs.string() + ":" + abs.string() + ":ro");
  };
  if (!request.input.empty()) read_only(request.input);
  for (const auto& p : request.also_read) read_only(p);
  fs::path out = fs::absolute(request.output_dir);
  binds.push_back(out.string() + ":" + out.string() + ":rw");
  uid_t uid = ::geteuid() == 0 ? kImageUser : ::geteuid();
  gid_t gid = ::geteuid() == 0 ? kImageUser : ::getegid();
  nlohmann::json host = {
      {"NetworkMode", "none"},
      {"ReadonlyRootfs", true},
      {"CapDrop", {"ALL"}},
      {"SecurityOpt", {"no-new-privileges"}},
      {"Tmpfs", {{"/tmp", "rw,noexec,nosuid,nodev,size=" + limits_.tmpfs_size}}},
      {"PidsLimit", limits_.pids},
      {"Memory", limits_.memory_bytes},
      {"MemorySwap", limits_.memory_bytes},
      {"Binds", binds},
  };
  if (limits_.cpus > 0) host["NanoCpus"] = static_cast<int64_t>(limits_.cpus * 1e9);
  if (request.gpu) {
    host["DeviceRequests"] = {{{"Driver", "nvidia"}, {"Count", -1}, {"Capabilities", {{"gpu"}}}}};
  }
  return {{"Image", image_},
          {"Cmd", cmd},
          {"Entrypoint", nlohmann::json::array()},
          {"User", fmt::format("{}:{}", uid, gid)},
          {"WorkingDir", out.string()},
          {"Env", {"TMPDIR=/tmp", "HOME=/tmp", "KILN_CACHE=false"}},
          {"NetworkDisabled", true},
          {"Labels", {{"dev.kiln.executor", "1"}, {"dev.kiln.parent-pid", std::to_string(::getpid())},
                      {"dev.kiln.owner", util::self_owner()}}},
          {"HostConfig", host}};
}

Result<util::ProcessResult> ContainerExecutor::run(const compile::ExecRequest& request) {
  using Clock = std::chrono::steady_clock;
  fs::path out = fs::absolute(request.output_dir);
  std::string report = (out / ".kiln-exec.json").string();
  // Declared before the container's removal: the container goes first,
  // then the folder comes back.
  FolderLoan loan(out);

  std::string name = fmt::format("kiln-{}-{}", ::getpid(), counter_++);
  Removal removal{&engine_, KILN_TRY(create_container(engine_, name, container_config(request, report)))};
  const std::string& id = removal.id;

  auto started = Clock::now();
  KILN_TRY(engine_.call("POST", "/containers/" + id + "/start"));
  auto deadline = request.timeout.count() > 0 ? started + request.timeout : Clock::time_point::max();
  util::ProcessResult result;
  nlohmann::json state;
  int cancelled_by = 0;
  bool engine_was_away = false;
  while (true) {
    state = KILN_TRY(container_state(engine_, id, name, engine_was_away));
    if (!state.value("Running", false)) break;
    bool cancelled = request.cancel && request.cancel->load();
    if (cancelled) cancelled_by = -1;
    if (cancelled || (cancelled_by = util::interrupted()) != 0 || Clock::now() >= deadline) {
      result.timed_out = cancelled_by == 0;
      (void)engine_.request("POST", "/containers/" + id + "/kill", "", 30000);
      (void)engine_.request("POST", "/containers/" + id + "/wait", "", 30000);
      state = KILN_TRY(engine_.call("GET", "/containers/" + id + "/json"))["State"];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - started).count();
  if (auto logs = engine_.request("GET", "/containers/" + id + "/logs?stdout=true&stderr=true")) {
    demultiplex(logs->body, result.out, result.err);
  }
  result.exit_status = state.value("ExitCode", -1);
  if (engine_was_away && result.exit_status != 0) return stopped_by_restart(name, result.exit_status);
  result.out_of_memory = state.value("OOMKilled", false);
  if (result.out_of_memory) {
    result.term_signal = 9;
    result.limit_note = "the container's memory limit is " + util::human_bytes(static_cast<double>(limits_.memory_bytes));
  } else if (result.exit_status > 128 && !result.timed_out) {
    result.term_signal = result.exit_status - 128;  // how __exec reports a crash
  }
  result.peak_rss_kib = read_report(report);
  if (cancelled_by == -1) return fail(Code::kCancelled, "cancelled; stopped and removed container " + name);
  if (cancelled_by) {
    return fail(Code::kCancelled, std::string("interrupted by ") + ::strsignal(cancelled_by) +
                                      "; stopped and removed container " + name);
  }
  return result;
}

}  // namespace kiln::docker
