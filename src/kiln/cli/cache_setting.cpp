#include "kiln/cli/cache_setting.h"

#include "kiln/util/strings.h"

namespace kiln::cli {

std::filesystem::path cache_root(const config::Config& config) {
  return config.get("cache_dir").empty() ? cache::default_root() : std::filesystem::path(config.get("cache_dir"));
}

Result<cache::Store> open_cache_store(const config::Config& config) {
  return cache::Store::open(cache_root(config), KILN_TRY(cache::parse_size(config.get("cache_max_size"))));
}

Result<std::optional<cache::Store>> cache_for_compiles(const config::Config& config, bool disabled) {
  std::string enabled = util::to_lower(config.get("cache"));
  if (disabled || enabled == "false" || enabled == "0" || enabled == "no") return std::optional<cache::Store>();
  return std::optional<cache::Store>(KILN_TRY(open_cache_store(config)));
}

}  // namespace kiln::cli
