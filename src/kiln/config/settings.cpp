#include "kiln/config/settings.h"

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::config {
namespace {

// Reads one key's value, each error naming the key, the value and its origin.
class Reader {
 public:
  explicit Reader(const Config& config) : config_(config) {}

  const std::string& text(const std::string& key) const { return config_.get(key); }

  Error bad(const std::string& key, const std::string& what) const {
    auto origin = config_.origins.find(key);
    return {Code::kInvalidArgument,
            fmt::format("setting {} = '{}' ({}) {}", key, text(key),
                        origin == config_.origins.end() ? "default" : origin->second, what)};
  }

  Result<double> number(const std::string& key, double min, double max) const {
    auto value = parse_number(key, text(key), min, max);
    if (!value) return tl::unexpected(bad(key, fmt::format("is not a number from {} to {}", min, max)));
    return *value;
  }

  Result<double> duration(const std::string& key) const {
    auto value = parse_duration(key, text(key));
    if (!value) return tl::unexpected(bad(key, "is not a duration; use seconds such as 600, or 10m, 1h"));
    return *value;
  }

  Result<uint64_t> size(const std::string& key) const {
    auto value = util::parse_size(text(key));
    if (!value) return tl::unexpected(bad(key, "is not a size; use bytes or a unit such as 500M, 5G"));
    return *value;
  }

  Result<bool> boolean(const std::string& key) const {
    std::string v = util::to_lower(text(key));
    if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "0" || v == "no" || v == "off") return false;
    return tl::unexpected(bad(key, "is not true or false"));
  }

  Result<std::string> choice(const std::string& key, const std::vector<std::string>& allowed) const {
    for (const auto& a : allowed) {
      if (text(key) == a) return a;
    }
    return tl::unexpected(bad(key, "is not one of: " + util::join(allowed, ", ")));
  }

 private:
  const Config& config_;
};

Status read_docker(const Reader& r, Settings& s) {
  s.docker_image = r.text("docker_image");
  s.docker_memory = KILN_TRY(r.size("docker_memory"));
  if (!r.text("docker_cpus").empty()) s.docker_cpus = KILN_TRY(r.number("docker_cpus", 0.01, 4096));
  s.docker_pids = static_cast<int64_t>(KILN_TRY(r.number("docker_pids", 1, 1e9)));
  KILN_TRY(r.size("docker_tmpfs"));
  s.docker_tmpfs = r.text("docker_tmpfs");
  return {};
}

Status read_compiles(const Reader& r, Settings& s) {
  s.compile_timeout = KILN_TRY(r.duration("compile_timeout"));
  s.executor = KILN_TRY(r.choice("executor", {"local", "docker"}));
  if (!r.text("opt_level").empty()) s.opt_level = KILN_TRY(r.choice("opt_level", {"O0", "O1", "O2", "O3"}));
  if (!r.text("jobs").empty()) s.jobs = static_cast<int>(KILN_TRY(r.number("jobs", 1, 1024)));
  if (!r.text("memory_budget").empty()) s.memory_budget = KILN_TRY(r.size("memory_budget"));
  return {};
}

}  // namespace

Result<Settings> settings_from(const Config& config) {
  Reader r(config);
  Settings s;
  s.iree_dir = r.text("iree_dir");
  KILN_TRY_STATUS(read_compiles(r, s));
  KILN_TRY_STATUS(read_docker(r, s));
  s.queue = r.text("queue");
  s.store = r.text("store");
  s.cache = KILN_TRY(r.boolean("cache"));
  s.cache_dir = r.text("cache_dir");
  s.cache_max_size = KILN_TRY(r.size("cache_max_size"));
  s.tuning_dir = r.text("tuning_dir");
  s.tuning = KILN_TRY(r.boolean("tuning"));
  return s;
}

}  // namespace kiln::config
