// kiln's settings as typed values, read once from a Config when kiln starts:
// every duration, number, size, switch and choice is checked there, and an
// error names the key, its value and where the value came from ("file
// kiln.conf:3", "env KILN_JOBS"). Commands read these fields, never the
// strings.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "kiln/config/config.h"
#include "kiln/util/error.h"

namespace kiln::config {

struct Settings {
  std::filesystem::path iree_dir;  // empty: the project's .venv, then PATH
  double compile_timeout = 1800;   // seconds
  std::string executor = "local";  // "local" or "docker"
  std::string docker_image;        // empty: kiln-cpu:<kiln version>
  uint64_t docker_memory = 0;      // bytes
  std::optional<double> docker_cpus;
  int64_t docker_pids = 256;
  std::string docker_tmpfs;        // a size, passed to the engine as written
  std::string opt_level;           // "" or O0..O3
  int jobs = 0;                    // 0: one per CPU
  std::optional<uint64_t> memory_budget;  // bytes; empty: 80% of what is available
  std::string queue;
  std::string store;
  bool cache = true;
  std::filesystem::path cache_dir;  // empty: cache::default_root()
  uint64_t cache_max_size = 0;      // bytes
  std::filesystem::path tuning_dir;  // empty: tuning::default_root()
  bool tuning = true;
};

// Checks and converts every value of `config`; the first bad one is the error.
Result<Settings> settings_from(const Config& config);

}  // namespace kiln::config
