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
  // Checked in memory before it is written: a module that is not the
  // entry's never reaches the unit's staging folder.
  auto module = KILN_TRY(bucket_.get(object(key, "module.vmfb")));
  if (!module) {
    return fail(Code::kInternal, fmt::format("the shared cache entry {} in {} has no module", key.substr(0, 12), describe()));
  }
  if (util::sha256_hex(*module) != entry.value("module_sha256", "")) {
    return fail(Code::kInternal, fmt::format("the shared cache entry {} in {} holds another module than it describes",
                                             key.substr(0, 12), describe()));
  }
  KILN_TRY_STATUS(util::write_file_atomic(module_dest, *module));
  return std::optional<Fetched>(Fetched{entry["metadata"]});
}

Status Shared::publish(const std::string& key, const KeyParts& parts, const std::filesystem::path& module,
                       const nlohmann::json& metadata) {
  // Read once: its digest goes into the entry, its bytes to the store.
  auto bytes = KILN_TRY(util::read_file(module));
  KILN_TRY_STATUS(bucket_.put(object(key, "module.vmfb"), bytes));
  nlohmann::json entry = {{"format", "kiln-shared-cache-entry"}, {"format_version", 1}, {"key", key},
                          {"parts", to_json(parts)}, {"module_sha256", util::sha256_hex(bytes)}, {"metadata", metadata}};
  return bucket_.put(object(key, "entry.json"), entry.dump());
}

}  // namespace kiln::cache
