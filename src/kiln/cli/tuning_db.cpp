#include "kiln/cli/tuning_db.h"

#include "kiln/util/strings.h"

namespace kiln::cli {

std::filesystem::path tuning_root(const config::Settings& settings) {
  return settings.tuning_dir.empty() ? tuning::default_root() : settings.tuning_dir;
}

std::optional<tuning::Database> tuning_for_compiles(const config::Settings& settings) {
  if (!settings.tuning) return std::nullopt;
  return tuning::Database(tuning_root(settings));
}

}  // namespace kiln::cli
