#include "kiln/cli/cache_setting.h"

#include "kiln/util/strings.h"

namespace kiln::cli {

std::filesystem::path cache_root(const config::Settings& settings) {
  return settings.cache_dir.empty() ? cache::default_root() : settings.cache_dir;
}

Result<cache::Store> open_cache_store(const config::Settings& settings) {
  return cache::Store::open(cache_root(settings), settings.cache_max_size);
}

Result<std::optional<cache::Store>> cache_for_compiles(const config::Settings& settings, bool disabled) {
  if (disabled || !settings.cache) return std::optional<cache::Store>();
  return std::optional<cache::Store>(KILN_TRY(open_cache_store(settings)));
}

}  // namespace kiln::cli
