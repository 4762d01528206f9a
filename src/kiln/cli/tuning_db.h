// Where the tuning database is (the `tuning_dir` setting) and whether
// compiles apply it (the `tuning` setting).
#pragma once

#include <filesystem>
#include <optional>

#include "kiln/config/settings.h"
#include "kiln/tuning/database.h"

namespace kiln::cli {

std::filesystem::path tuning_root(const config::Settings& settings);

// The database compiles should use, or nullopt when the setting turns
// tuning off.
std::optional<tuning::Database> tuning_for_compiles(const config::Settings& settings);

}  // namespace kiln::cli
