// The content-addressed artifact cache. Layout under the cache folder:
//
//   v1/lock                     flock'd for inserts, evictions and counters
//   v1/stats.json               {"format": "kiln-cache-stats", "format_version": 1, hits, misses, ...}
//   v1/entries/ab/<key>/        one entry: module.vmfb, metadata.json,
//                               entry.json ("kiln-cache-entry" v1: key parts and
//                               checksums), used (its mtime is the LRU clock)
//   v1/tmp/                     entries being written; renamed into place whole
//
// Entries are immutable: written into tmp/ and renamed, so a reader sees a
// whole entry or none. Every lookup checks the module's checksum; a corrupt
// or unreadable entry is removed and reported as a miss, never served.
// Several kiln processes may share one cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kiln/cache/key.h"
#include "kiln/util/error.h"

namespace kiln::cache {

namespace fs = std::filesystem;

struct Entry {
  std::string key;
  fs::path module;          // inside the cache: copy it, never modify it
  nlohmann::json metadata;  // the metadata of the compile that made it
};

struct Stats {
  uint64_t hits = 0, misses = 0, evictions = 0, corrupt = 0;
  uint64_t entries = 0, bytes = 0, max_bytes = 0;
};

struct Explanation {
  bool found_nearest = false;
  KeyParts nearest;
  std::vector<std::string> differing;  // which parts of the key differ from the nearest entry
};

class Store {
 public:
  // Creates the folder layout if needed. max_bytes 0 means no limit.
  static Result<Store> open(const fs::path& root, uint64_t max_bytes);

  // A verified entry, or nullopt; counts a hit or a miss.
  Result<std::optional<Entry>> lookup(const std::string& key);
  // Adds an entry (a no-op if another process added it first), then evicts
  // least-recently-used entries while the cache is over its size limit.
  // Removes what kiln processes that died left in the cache's working
  // folder (half-made entries); open() does it too. Returns what went.
  std::vector<fs::path> reap();
  // Removes an entry that a reader found damaged (counted as corrupt).
  Status discard(const std::string& key);
  Status insert(const std::string& key, const KeyParts& parts, const fs::path& module, const nlohmann::json& metadata);
  Result<Stats> stats();
  // Removes every entry; keeps the counters.
  Status clear();
  // The entry whose key parts are closest to `parts`, and what differs.
  Explanation explain(const KeyParts& parts);

  const fs::path& root() const { return root_; }

 private:
  Store(fs::path root, uint64_t max_bytes) : root_(std::move(root)), max_bytes_(max_bytes) {}
  fs::path entry_dir(const std::string& key) const;
  Status bump(const char* counter, uint64_t by = 1);
  Status evict_locked();

  fs::path root_;  // .../v1
  uint64_t max_bytes_;
};

// "5G", "500M", "1024" (bytes) -> bytes.
Result<uint64_t> parse_size(const std::string& text);

// $XDG_CACHE_HOME/kiln, else ~/.cache/kiln.
fs::path default_root();

}  // namespace kiln::cache
