#include "kiln/cache/shared.h"

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/hash.h"

namespace kiln::cache {

namespace {
std::string object(const std::string& key, const char* name) { return fmt::format("cache/v{}/{}/{}", kFormatVersion, key, name); }
}  // namespace

Result<std::optional<Shared::Fetched>> Shared::fetch(const std::string& key, const std::filesystem::path& module_dest) {
  auto entry_text = KILN_TRY(bucket_.get(object(key, "entry.json")));
  if (!entry_text) return std::optional<Fetched>();
  auto entry = nlohmann::json::parse(*entry_text, nullptr, false);
  if (entry.is_discarded() || !entry.is_object() || entry.value("format", "") != "kiln-shared-cache-entry" ||
      !entry.contains("metadata") || !entry["metadata"].is_object()) {
    return fail(Code::kInternal, fmt::format("the shared cache entry {} in {} is damaged", key.substr(0, 12), describe()));
  }
  if (!KILN_TRY(bucket_.get_file(object(key, "module.vmfb"), module_dest))) {
    return fail(Code::kInternal, fmt::format("the shared cache entry {} in {} has no module", key.substr(0, 12), describe()));
  }
  auto sha = KILN_TRY(util::sha256_file(module_dest));
  if (sha != entry.value("module_sha256", "")) {
    std::error_code ec;
    std::filesystem::remove(module_dest, ec);
    return fail(Code::kInternal, fmt::format("the shared cache entry {} in {} holds another module than it describes",
                                             key.substr(0, 12), describe()));
  }
  return std::optional<Fetched>(Fetched{entry["metadata"]});
}

Status Shared::publish(const std::string& key, const KeyParts& parts, const std::filesystem::path& module,
                       const nlohmann::json& metadata) {
  auto sha = KILN_TRY(util::sha256_file(module));
  KILN_TRY_STATUS(bucket_.put_file(object(key, "module.vmfb"), module));
  nlohmann::json entry = {{"format", "kiln-shared-cache-entry"}, {"format_version", 1}, {"key", key},
                          {"parts", to_json(parts)}, {"module_sha256", sha}, {"metadata", metadata}};
  return bucket_.put(object(key, "entry.json"), entry.dump());
}

}  // namespace kiln::cache
