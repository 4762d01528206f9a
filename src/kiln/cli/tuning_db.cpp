#include "kiln/cli/tuning_db.h"

#include "kiln/util/strings.h"

namespace kiln::cli {

std::filesystem::path tuning_root(const config::Config& config) {
  const auto& dir = config.get("tuning_dir");
  return dir.empty() ? tuning::default_root() : std::filesystem::path(dir);
}

std::optional<tuning::Database> tuning_for_compiles(const config::Config& config) {
  std::string on = util::to_lower(config.get("tuning"));
  if (on == "false" || on == "0" || on == "no") return std::nullopt;
  return tuning::Database(tuning_root(config));
}

}  // namespace kiln::cli
