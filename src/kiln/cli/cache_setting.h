// The artifact cache as the settings configure it (cache, cache_dir,
// cache_max_size), read in one place for every command that uses it.
#pragma once

#include <filesystem>
#include <optional>

#include "kiln/cache/store.h"
#include "kiln/config/settings.h"

namespace kiln::cli {

// cache_dir, or the default root.
std::filesystem::path cache_root(const config::Settings& settings);

// The cache compiles use: nullopt when the setting `cache` is off or
// `disabled` (--no-cache).
Result<std::optional<cache::Store>> cache_for_compiles(const config::Settings& settings, bool disabled = false);

// The cache itself, whatever `cache` says (kiln cache).
Result<cache::Store> open_cache_store(const config::Settings& settings);

}  // namespace kiln::cli
