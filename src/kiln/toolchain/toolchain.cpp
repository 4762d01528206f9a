#include "kiln/toolchain/toolchain.h"

#include <unistd.h>

#include <cstdlib>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"
#include "kiln/util/subprocess.h"
#include "kiln/version.h"

namespace kiln::toolchain {
namespace {

bool is_executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && ::access(p.c_str(), X_OK) == 0;
}

fs::path self_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// <venv>/lib/python3.X/site-packages, or "" when `root` is no Python env.
fs::path site_packages(const fs::path& root) {
  std::error_code ec;
  // A folder the wheels were unpacked into (pip install --target DIR).
  if (fs::is_directory(root / "iree", ec)) return root;
  fs::path lib = root / "lib";
  if (!fs::is_directory(lib, ec)) return {};
  for (const auto& entry : fs::directory_iterator(lib, ec)) {
    fs::path sp = entry.path() / "site-packages";
    if (util::starts_with(entry.path().filename().string(), "python") && fs::is_directory(sp / "iree", ec)) return sp;
  }
  return {};
}

// "iree_base_compiler-3.13.0.dist-info" -> "3.13.0".
std::string dist_release(const fs::path& sp, const std::string& dist) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(sp, ec)) {
    std::string name = entry.path().filename().string();
    if (util::starts_with(name, dist + "-") && name.size() > 10 && name.substr(name.size() - 10) == ".dist-info") {
      return name.substr(dist.size() + 1, name.size() - dist.size() - 11);
    }
  }
  return {};
}

// version.py holds VERSION = "..." and REVISIONS = {"IREE": "..."}.
void read_version_py(const fs::path& file, std::string& build, std::string& revision) {
  auto text = util::read_file(file);
  if (!text) return;
  // The first double-quoted string after `key` and its '=' or ':'.
  auto quoted_after = [&](const std::string& key) -> std::string {
    size_t at = text->find(key);
    if (at == std::string::npos) return "";
    size_t open = text->find('"', at + key.size());
    size_t close = open == std::string::npos ? open : text->find('"', open + 1);
    if (close == std::string::npos || close - open > 200) return "";
    return text->substr(open + 1, close - open - 1);
  };
  if (auto v = quoted_after("VERSION"); !v.empty()) build = v;
  if (auto r = quoted_after("\"IREE\""); !r.empty() && r.find_first_not_of("0123456789abcdef") == std::string::npos) revision = r;
}

// A Python environment with the IREE wheels installed.
std::optional<Toolchain> from_environment(const fs::path& root) {
  fs::path sp = site_packages(root);
  if (sp.empty()) return std::nullopt;
  Toolchain t;
  fs::path compiler_libs = sp / "iree/compiler/_mlir_libs";
  fs::path runtime_libs = sp / "iree/_runtime_libs";
  t.compile = compiler_libs / "iree-compile";
  t.opt = compiler_libs / "iree-opt";
  bool has_runtime = is_executable(runtime_libs / "iree-run-module");
  if (!is_executable(t.compile)) {
    // A runtime-only environment (a deployment host) can still run modules.
    if (!has_runtime) return std::nullopt;
    t.compile.clear();
    t.opt.clear();
  }
  if (has_runtime) {
    t.run_module = runtime_libs / "iree-run-module";
    t.benchmark_module = runtime_libs / "iree-benchmark-module";
    if (is_executable(runtime_libs / "iree-profile")) t.profile = runtime_libs / "iree-profile";
    t.runtime_release = dist_release(sp, "iree_base_runtime");
  }
  t.release = dist_release(sp, "iree_base_compiler");
  read_version_py(sp / (t.compile.empty() ? "iree/_runtime_libs/version.py" : "iree/compiler/version.py"), t.build,
                  t.revision);
  t.root = root;
  return t;
}

// A plain folder of IREE binaries; the version comes from `iree-compile --version`.
std::optional<Toolchain> from_folder(const fs::path& dir) {
  if (!is_executable(dir / "iree-compile")) return std::nullopt;
  // A venv's bin/ holds Python entry points: use the environment instead.
  if (fs::exists(dir.parent_path() / "pyvenv.cfg")) return from_environment(dir.parent_path());
  Toolchain t;
  t.compile = dir / "iree-compile";
  t.opt = dir / "iree-opt";
  if (is_executable(dir / "iree-run-module")) {
    t.run_module = dir / "iree-run-module";
    t.benchmark_module = dir / "iree-benchmark-module";
    if (is_executable(dir / "iree-profile")) t.profile = dir / "iree-profile";
  }
  auto run = util::run_process({.argv = {t.compile.string(), "--version"}, .timeout = std::chrono::seconds(30)});
  if (run && run->ok()) {
    // "IREE compiler version 3.13.0rc20261016 @ <revision>"
    static const std::string marker = "IREE compiler version ";
    size_t at = run->out.find(marker);
    if (at != std::string::npos) {
      auto words = util::split(run->out.substr(at + marker.size(), run->out.find('\n', at) - at - marker.size()), ' ');
      if (words.size() >= 3 && words[1] == "@") {
        t.build = words[0];
        t.revision = std::string(util::trim(words[2]));
        // "3.13.0rc20261016" belongs to release "3.13.0".
        size_t rc = t.build.rfind("rc");
        bool rc_suffix = rc != std::string::npos && rc + 2 < t.build.size() &&
                         t.build.find_first_not_of("0123456789", rc + 2) == std::string::npos;
        t.release = rc_suffix ? t.build.substr(0, rc) : t.build;
        t.runtime_release = t.run_module.empty() ? "" : t.release;
      }
    }
  }
  t.root = dir;
  return t;
}

std::optional<Toolchain> from_any(const fs::path& p) {
  if (auto t = from_environment(p)) return t;
  return from_folder(p);
}

std::vector<fs::path> project_candidates() {
  std::vector<fs::path> out;
  fs::path self = self_dir();
  if (!self.empty()) {
    out.push_back(self.parent_path() / ".venv");           // build/kiln
    out.push_back(self.parent_path() / "share/kiln/venv");  // installed layout
    out.push_back(self / ".venv");
  }
  std::error_code ec;
  out.push_back(fs::current_path(ec) / ".venv");
  return out;
}

}  // namespace

const char* pinned_release() { return KILN_IREE_RELEASE; }

std::vector<std::string> search_locations(const config::Config& config) {
  std::vector<std::string> out;
  if (!config.get("iree_dir").empty()) out.push_back(config.get("iree_dir") + " (" + config.origins.at("iree_dir") + ")");
  for (const auto& p : project_candidates()) out.push_back(p.string());
  out.push_back("PATH");
  return out;
}

Result<Toolchain> find(const config::Config& config) {
  const std::string& configured = config.get("iree_dir");
  if (!configured.empty()) {
    if (auto t = from_any(configured)) {
      t->found_by = config.origins.at("iree_dir");
      return *t;
    }
    return fail(Code::kFailedPrecondition,
                fmt::format("iree_dir ({}) is {}, which holds no IREE compiler: expected a Python environment "
                            "with iree-base-compiler installed, or a folder containing iree-compile",
                            config.origins.at("iree_dir"), configured));
  }
  for (const auto& candidate : project_candidates()) {
    if (auto t = from_environment(candidate)) {
      t->found_by = "project environment";
      return *t;
    }
  }
  if (const char* path = std::getenv("PATH")) {
    for (const auto& dir : util::split(path, ':')) {
      if (dir.empty()) continue;
      if (auto t = from_folder(dir)) {
        t->found_by = "PATH";
        return *t;
      }
    }
  }
  return fail(Code::kFailedPrecondition,
              fmt::format("no IREE toolchain found; run scripts/setup.sh (installs IREE {} into .venv), or set "
                          "KILN_IREE_DIR to an environment with iree-base-compiler=={} installed",
                          pinned_release(), pinned_release()));
}

Result<std::string> print_as_text(const Toolchain& tools, const fs::path& file) {
  if (tools.opt.empty()) {
    return fail(Code::kFailedPrecondition, fmt::format("reading MLIR bytecode needs iree-opt from iree-base-compiler=={}, "
                                                       "which is not installed in {}", pinned_release(), tools.root.string()));
  }
  auto run = util::run_process({.argv = {tools.opt.string(), "--mlir-print-debuginfo",
                                         "--mlir-elide-elementsattrs-if-larger=16", "--allow-unregistered-dialect",
                                         file.string()},
                                .timeout = std::chrono::minutes(10)});
  if (!run) return tl::unexpected(run.error());
  if (!run->ok()) {
    std::string message = std::string(util::trim(run->err));
    if (size_t cut = message.find("Stack dump:"); cut != std::string::npos) message = message.substr(0, cut);
    if (message.size() > 2000) message = message.substr(0, 2000) + "...";
    return fail(Code::kInvalidArgument,
                fmt::format("iree-opt could not read it ({}): {}", util::describe_outcome(*run), util::trim(message)));
  }
  return std::move(run->out);
}

Result<std::string> first_ir_dump(std::string_view diagnostics) {
  constexpr std::string_view kHeader = "// -----// IR Dump";
  size_t start = diagnostics.find(kHeader);
  if (start == std::string_view::npos) return fail(Code::kInternal, "the compiler printed no IR dump");
  start = diagnostics.find('\n', start);
  if (start == std::string_view::npos) return fail(Code::kInternal, "the compiler's IR dump is empty");
  ++start;
  size_t end = diagnostics.find(kHeader, start);
  std::string_view rest = diagnostics.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
  // Location aliases, the module, and the aliases after it: up to the last
  // line that starts with '}' or "#loc" before anything else.
  size_t close = std::string_view::npos, pos = 0;
  bool after_close = false;
  while (pos < rest.size()) {
    size_t nl = rest.find('\n', pos);
    size_t next = nl == std::string_view::npos ? rest.size() : nl + 1;
    std::string_view line = rest.substr(pos, next - pos);
    if (line.starts_with("}")) {
      close = next;
      after_close = true;
    } else if (after_close && line.starts_with("#loc")) {
      close = next;
    } else if (after_close && line.starts_with("{-#")) {
      // Dialect resources (dense_resource blobs): through their "#-}".
      size_t stop = rest.find("\n#-}", pos);
      if (stop == std::string_view::npos) break;
      stop = rest.find('\n', stop + 1);
      next = stop == std::string_view::npos ? rest.size() : stop + 1;
      close = next;
    } else if (after_close && !util::trim(line).empty()) {
      break;
    }
    pos = next;
  }
  bool has_module = rest.starts_with("module") || rest.find("\nmodule") < close;
  if (close == std::string_view::npos || !has_module) {
    return fail(Code::kInternal, "the compiler's IR dump holds no whole module");
  }
  return std::string(rest.substr(0, close));
}

Result<std::string> print_vhlo_as_stablehlo(const Toolchain& tools, const fs::path& file) {
  if (tools.compile.empty()) {
    return fail(Code::kFailedPrecondition, fmt::format("reading VHLO as StableHLO needs iree-compile from "
                                                       "iree-base-compiler=={}", pinned_release()));
  }
  // A module per function is printed; the first one, taken before any pass
  // changed the program, is the one wanted. A failure later in the input
  // phase (the reason kiln rewrites the program) does not matter.
  auto run = util::run_process({.argv = {tools.compile.string(), file.string(), "--iree-hal-target-device=local",
                                         "--iree-hal-local-target-device-backends=llvm-cpu", "--compile-to=flow",
                                         "--mlir-print-ir-before=chlo-legalize-to-stablehlo",
                                         "--mlir-print-ir-module-scope", "--mlir-disable-threading",
                                         "--mlir-print-debuginfo", "-o", "/dev/null"},
                                .timeout = std::chrono::minutes(10)});
  if (!run) return tl::unexpected(run.error());
  auto text = first_ir_dump(run->err);
  if (!text) {
    std::string message = std::string(util::trim(run->err)).substr(0, 2000);
    return fail(Code::kInvalidArgument, fmt::format("iree-compile could not read it as StableHLO ({}): {}",
                                                    util::describe_outcome(*run), message));
  }
  return text;
}

Result<Toolchain> find_runtime(const config::Config& config) {
  auto t = KILN_TRY(find(config));
  if (t.run_module.empty()) {
    return fail(Code::kFailedPrecondition,
                fmt::format("the IREE runtime tools are missing from {}; install iree-base-runtime=={} next to the "
                            "compiler (scripts/setup.sh does)",
                            t.root.string(), t.release.empty() ? pinned_release() : t.release));
  }
  return t;
}

Result<Toolchain> find_pinned(const config::Config& config) {
  auto t = KILN_TRY(find(config));
  if (t.compile.empty()) {
    return fail(Code::kFailedPrecondition,
                fmt::format("{} holds only the IREE runtime; compiling needs iree-base-compiler=={} (scripts/setup.sh "
                            "installs it)",
                            t.root.string(), pinned_release()));
  }
  if (t.release != pinned_release()) {
    return fail(Code::kFailedPrecondition,
                fmt::format("the IREE compiler at {} is release {}, but this kiln knows the flags of IREE {}; "
                            "install iree-base-compiler=={} (scripts/setup.sh does) or point KILN_IREE_DIR at it",
                            t.compile.string(), t.release.empty() ? "unknown" : t.release, pinned_release(),
                            pinned_release()));
  }
  return t;
}

}  // namespace kiln::toolchain
