#include "kiln/config/config.h"

#include <cstdlib>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::config {

const std::vector<Key>& keys() {
  static const std::vector<Key> table = {
      {"iree_dir", "KILN_IREE_DIR", "",
       "IREE toolchain: a Python environment holding iree-base-compiler/-runtime, or a folder of IREE tools; "
       "empty finds the project's .venv, then PATH"},
      {"compile_timeout", "KILN_COMPILE_TIMEOUT", "1800",
       "time limit for one iree-compile run, in seconds (or with s, m, h)"},
      {"executor", "KILN_EXECUTOR", "local", "where the IREE tools run: local, or docker (a hardened container)"},
      {"docker_image", "KILN_DOCKER_IMAGE", "", "kiln image for the docker executor; empty: kiln-cpu:<kiln version>"},
      {"docker_memory", "KILN_DOCKER_MEMORY", "4G", "memory limit of each container"},
      {"docker_cpus", "KILN_DOCKER_CPUS", "", "CPU limit of each container (e.g. 2); empty: no limit"},
      {"docker_pids", "KILN_DOCKER_PIDS", "256", "process limit of each container"},
      {"docker_tmpfs", "KILN_DOCKER_TMPFS", "1g", "size of each container's /tmp (tmpfs)"},
      {"opt_level", "KILN_OPT_LEVEL", "", "default optimization level (O0 to O3); empty uses the compiler's default"},
      {"jobs", "KILN_JOBS", "", "compile units run at once; empty: one per CPU"},
      {"memory_budget", "KILN_MEMORY_BUDGET", "", "memory the running compiles may use together (500M, 8G); empty: "
                                                  "80% of the memory available when kiln starts"},
      {"queue", "KILN_QUEUE", "", "the service's job queue: empty is DATA_DIR/kiln.db (SQLite, one host); "
                                  "postgresql://USER@HOST/DB is shared by a fleet"},
      {"store", "KILN_STORE", "", "the service's shared store for uploads, artifacts and the fleet's cache: "
                                  "s3://BUCKET/PREFIX (AWS_* variables) or a folder every host sees; empty: DATA_DIR"},
      {"cache", "KILN_CACHE", "true", "use the artifact cache: true or false"},
      {"cache_dir", "KILN_CACHE_DIR", "", "the artifact cache; empty: $XDG_CACHE_HOME/kiln or ~/.cache/kiln"},
      {"cache_max_size", "KILN_CACHE_MAX_SIZE", "5G", "size limit of the cache; least recently used entries go first"},
      {"tuning_dir", "KILN_TUNING_DIR", "", "the tuning database; empty: $XDG_DATA_HOME/kiln/tuning or ~/.local/share/kiln/tuning"},
      {"tuning", "KILN_TUNING", "true", "apply tuning records when compiling: true or false"},
  };
  return table;
}

const std::string& Config::get(const std::string& key) const {
  static const std::string empty;
  auto it = values.find(key);
  return it == values.end() ? empty : it->second;
}

void Config::set(const std::string& key, const std::string& value, const std::string& origin) {
  values[key] = value;
  origins[key] = origin;
}

namespace {

std::vector<std::string> key_names() {
  std::vector<std::string> names;
  for (const auto& k : keys()) names.push_back(k.name);
  return names;
}

std::string config_path() {
  if (const char* p = std::getenv("KILN_CONFIG"); p && *p) return p;
  if (const char* x = std::getenv("XDG_CONFIG_HOME"); x && *x) return std::string(x) + "/kiln/kiln.conf";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.config/kiln/kiln.conf";
  return {};
}

}  // namespace

Status apply_file(Config& config, const std::string& path, const std::string& text) {
  auto lines = util::split(text, '\n');
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = util::trim(lines[i]);
    if (line.empty() || line[0] == '#') continue;
    size_t eq = line.find('=');
    std::string where = fmt::format("{}:{}", path, i + 1);
    if (eq == std::string_view::npos) {
      return fail(Code::kInvalidArgument, where + ": expected 'key = value', found '" + std::string(line) + "'");
    }
    std::string key(util::trim(line.substr(0, eq)));
    std::string value(util::trim(line.substr(eq + 1)));
    if (config.values.find(key) == config.values.end()) {
      std::string near = util::nearest(key, key_names());
      return fail(Code::kInvalidArgument,
                  fmt::format("{}: unknown setting '{}'{}; settings are: {}", where, key,
                              near.empty() ? "" : " (did you mean '" + near + "'?)", util::join(key_names(), ", ")));
    }
    config.set(key, value, "file " + where);
  }
  return {};
}

Result<Config> load() {
  Config config;
  for (const auto& k : keys()) config.set(k.name, k.default_value, "default");
  std::string path = config_path();
  std::error_code ec;
  if (!path.empty() && std::filesystem::exists(path, ec)) {
    auto text = util::read_file(path);
    if (!text) return tl::unexpected(text.error().context("reading the configuration"));
    KILN_TRY_STATUS(apply_file(config, path, *text));
  } else if (std::getenv("KILN_CONFIG") && *std::getenv("KILN_CONFIG")) {
    return fail(Code::kNotFound, "KILN_CONFIG names " + path + ", which does not exist");
  }
  for (const auto& k : keys()) {
    if (const char* v = std::getenv(k.env); v && *v) config.set(k.name, v, std::string("env ") + k.env);
  }
  return config;
}

Result<double> parse_number(const std::string& key, const std::string& text, double min, double max) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == text.c_str() || !util::trim(end).empty() || !(value >= min && value <= max)) {
    return fail(Code::kInvalidArgument, fmt::format("{} = '{}' is not a number from {} to {}", key, text, min, max));
  }
  return value;
}

Result<double> parse_duration(const std::string& key, const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  std::string unit = end ? std::string(util::trim(end)) : "";
  double scale = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : -1;
  if (end == text.c_str() || scale < 0 || !(value > 0)) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} = '{}' is not a duration; use seconds such as 600, or 10m, 1h", key, text));
  }
  return value * scale;
}

}  // namespace kiln::config
