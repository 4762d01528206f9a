// The compile cache that a fleet shares: entries as objects in a bucket
// (blob::Bucket, so S3 or a shared folder), next to each host's local cache.
// Keys are the local cache's: a SHA-256 over tagged key parts, the digest
// that a Remote Execution API action cache could hold as well.
//
//   cache/v1/<key>/module.vmfb   the module, written first
//   cache/v1/<key>/entry.json    key parts, metadata and the module's SHA-256,
//                                written last: an entry without it does not exist
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/blob/bucket.h"
#include "kiln/cache/key.h"
#include "kiln/util/error.h"

namespace kiln::cache {

class Shared {
 public:
  explicit Shared(blob::Bucket& bucket) : bucket_(bucket) {}

  struct Fetched {
    nlohmann::json metadata;
  };
  // Writes the entry's module to `module_dest` (checked against the entry's
  // checksum) and returns its metadata; nullopt when there is no entry.
  Result<std::optional<Fetched>> fetch(const std::string& key, const std::filesystem::path& module_dest);
  Status publish(const std::string& key, const KeyParts& parts, const std::filesystem::path& module,
                 const nlohmann::json& metadata);
  std::string describe() const { return bucket_.describe(); }

 private:
  blob::Bucket& bucket_;
};

// One compile of a key at a time, fleet-wide: a second worker that wants to
// compile a key another is compiling waits, then finds it in the cache.
class KeyLocks {
 public:
  virtual ~KeyLocks() = default;
  struct Held {
    virtual ~Held() = default;
  };
  // Blocks until this caller holds `key` (released when the result is
  // destroyed), or `cancel` is set (kCancelled).
  virtual Result<std::unique_ptr<Held>> hold(const std::string& key, const std::atomic<bool>* cancel) = 0;
};

}  // namespace kiln::cache
