#include "kiln/cache/store.h"
#include "kiln/util/json.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include <fmt/format.h>

#include "kiln/util/file.h"
#include "kiln/util/orphans.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::cache {
namespace {

// Holds an exclusive flock on v1/lock for its lifetime.
class Lock {
 public:
  static Result<Lock> take(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(Code::kFailedPrecondition, file.string() + ": " + errno_text("open", errno));
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        int err = errno;
        ::close(fd);
        return fail(Code::kInternal, file.string() + ": " + errno_text("flock", err));
      }
    }
    return Lock(fd);
  }
  Lock(Lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Lock(const Lock&) = delete;
  ~Lock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  explicit Lock(int fd) : fd_(fd) {}
  int fd_;
};

uint64_t folder_bytes(const fs::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(dir, ec)) {
    if (f.is_regular_file(ec)) total += f.file_size(ec);
  }
  return total;
}

struct Listed {
  fs::path dir;
  fs::file_time_type used;
  uint64_t bytes;
};

std::vector<Listed> list_entries(const fs::path& entries) {
  std::vector<Listed> out;
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(entries, ec)) {
    for (const auto& e : fs::directory_iterator(shard.path(), ec)) {
      std::error_code tec;
      auto used = fs::last_write_time(e.path() / "used", tec);
      out.push_back({e.path(), tec ? fs::file_time_type::min() : used, folder_bytes(e.path())});
    }
  }
  return out;
}

Result<nlohmann::json> read_json(const fs::path& file) {
  auto text = KILN_TRY(util::read_file(file));
  return util::parse_json(text, file.string());
}

}  // namespace

Result<uint64_t> parse_size(const std::string& text) {
  if (auto size = util::parse_size(text)) return *size;
  return fail(Code::kInvalidArgument, "'" + text + "' is not a size; use bytes or a unit such as 500M, 5G");
}

fs::path default_root() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return fs::path(x) / "kiln";
  if (const char* h = std::getenv("HOME"); h && *h) return fs::path(h) / ".cache/kiln";
  return util::temp_root() / "kiln-cache";
}

Result<Store> Store::open(const fs::path& root, uint64_t max_bytes) {
  fs::path v1 = root / "v1";
  std::error_code ec;
  fs::create_directories(v1 / "entries", ec);
  if (!ec) fs::create_directories(v1 / "tmp", ec);
  if (ec) return fail(Code::kFailedPrecondition, fmt::format("cannot create the cache at {}: {}", v1.string(), ec.message()));
  Store store(v1, max_bytes);
  store.reap();
  return store;
}

fs::path Store::entry_dir(const std::string& key) const { return root_ / "entries" / key.substr(0, 2) / key; }

Status Store::bump(const char* counter, uint64_t by) {
  auto lock = KILN_TRY(Lock::take(root_ / "lock"));
  nlohmann::json s = {{"format", "kiln-cache-stats"}, {"format_version", 1}};
  if (auto existing = read_json(root_ / "stats.json"); existing && existing->value("format", "") == "kiln-cache-stats") {
    s = *existing;
  }
  s[counter] = s.value(counter, uint64_t{0}) + by;
  return util::write_file_atomic(root_ / "stats.json", s.dump(2) + "\n");
}

Result<std::optional<Entry>> Store::lookup(const std::string& key) {
  fs::path dir = entry_dir(key);
  std::error_code ec;
  if (!fs::exists(dir / "entry.json", ec)) {
    KILN_TRY_STATUS(bump("misses"));
    return std::nullopt;
  }
  // Check the entry whole before serving it.
  auto entry = read_json(dir / "entry.json");
  auto metadata = read_json(dir / "metadata.json");
  auto sha = util::sha256_file(dir / "module.vmfb");
  bool ok = entry && metadata && sha && entry->value("format", "") == "kiln-cache-entry" &&
            entry->value("format_version", 0) == kFormatVersion && entry->value("key", "") == key &&
            entry->value("module_sha256", "") == *sha;
  if (!ok) {
    KILN_TRY_STATUS(discard(key));
    KILN_TRY_STATUS(bump("misses"));
    return std::nullopt;
  }
  // The LRU clock: touch "used".
  ::utimensat(AT_FDCWD, (dir / "used").c_str(), nullptr, 0);
  KILN_TRY_STATUS(bump("hits"));
  return Entry{key, dir / "module.vmfb", std::move(*metadata)};
}

std::vector<fs::path> Store::reap() {
  // Inserts and drops of kiln processes that died half way.
  auto removed = util::reap_orphans(root_ / "tmp", "insert-");
  for (auto& p : util::reap_orphans(root_ / "tmp", ".corrupt-", std::chrono::minutes(10))) removed.push_back(p);
  return removed;
}

Status Store::discard(const std::string& key) {
  // Renamed away first, so no reader ever sees half an entry.
  std::error_code ec;
  fs::path dir = entry_dir(key);
  fs::path doomed = root_ / "tmp" / (".corrupt-" + key);
  fs::rename(dir, doomed, ec);
  fs::remove_all(ec ? dir : doomed, ec);
  return bump("corrupt");
}

Status Store::insert(const std::string& key, const KeyParts& parts, const fs::path& module, const nlohmann::json& metadata) {
  std::error_code ec;
  fs::path final_dir = entry_dir(key);
  if (fs::exists(final_dir / "entry.json", ec)) return {};
  auto staging = KILN_TRY(util::TempDir::create(root_ / "tmp", "insert-"));
  KILN_TRY_STATUS(util::mark_owner(staging.path()));
  fs::path dir = staging.path() / "entry";
  fs::create_directory(dir, ec);
  fs::copy_file(module, dir / "module.vmfb", ec);
  if (ec) return fail(ec == std::errc::no_space_on_device ? Code::kResourceExhausted : Code::kInternal,
                      fmt::format("cannot copy the module into the cache at {}: {}", root_.string(), ec.message()));
  auto sha = KILN_TRY(util::sha256_file(dir / "module.vmfb"));
  nlohmann::json entry = {{"format", "kiln-cache-entry"}, {"format_version", kFormatVersion}, {"key", key},
                          {"parts", to_json(parts)}, {"module_sha256", sha}};
  KILN_TRY_STATUS(util::write_file_atomic(dir / "metadata.json", metadata.dump(2) + "\n"));
  KILN_TRY_STATUS(util::write_file_atomic(dir / "used", ""));
  KILN_TRY_STATUS(util::write_file_atomic(dir / "entry.json", entry.dump(2) + "\n"));
  auto lock = KILN_TRY(Lock::take(root_ / "lock"));
  fs::create_directories(final_dir.parent_path(), ec);
  if (::rename(dir.c_str(), final_dir.c_str()) != 0 && errno != ENOTEMPTY && errno != EEXIST) {
    return fail(Code::kInternal, final_dir.string() + ": " + errno_text("rename", errno));
  }
  return evict_locked();
}

Status Store::evict_locked() {
  if (max_bytes_ == 0) return {};
  auto entries = list_entries(root_ / "entries");
  uint64_t total = 0;
  for (const auto& e : entries) total += e.bytes;
  if (total <= max_bytes_) return {};
  std::sort(entries.begin(), entries.end(), [](const Listed& a, const Listed& b) { return a.used < b.used; });
  uint64_t evicted = 0;
  for (const auto& e : entries) {
    if (total <= max_bytes_) break;
    std::error_code ec;
    fs::path doomed = root_ / "tmp" / (".evicted-" + e.dir.filename().string());
    fs::rename(e.dir, doomed, ec);
    fs::remove_all(ec ? e.dir : doomed, ec);
    total -= e.bytes;
    ++evicted;
  }
  // Counters are updated under the same lock file: write them directly.
  nlohmann::json s = {{"format", "kiln-cache-stats"}, {"format_version", 1}};
  if (auto existing = read_json(root_ / "stats.json"); existing) s = *existing;
  s["evictions"] = s.value("evictions", uint64_t{0}) + evicted;
  return util::write_file_atomic(root_ / "stats.json", s.dump(2) + "\n");
}

Result<Stats> Store::stats() {
  Stats st;
  st.max_bytes = max_bytes_;
  if (auto s = read_json(root_ / "stats.json"); s) {
    st.hits = s->value("hits", uint64_t{0});
    st.misses = s->value("misses", uint64_t{0});
    st.evictions = s->value("evictions", uint64_t{0});
    st.corrupt = s->value("corrupt", uint64_t{0});
  }
  for (const auto& e : list_entries(root_ / "entries")) {
    ++st.entries;
    st.bytes += e.bytes;
  }
  return st;
}

Status Store::clear() {
  auto lock = KILN_TRY(Lock::take(root_ / "lock"));
  std::error_code ec;
  fs::path doomed = root_ / "tmp" / ".cleared";
  fs::remove_all(doomed, ec);
  fs::rename(root_ / "entries", doomed, ec);
  fs::remove_all(doomed, ec);
  fs::create_directories(root_ / "entries", ec);
  if (ec) return fail(Code::kInternal, "cannot clear the cache at " + root_.string() + ": " + ec.message());
  return {};
}

Explanation Store::explain(const KeyParts& parts) {
  Explanation best;
  size_t best_count = SIZE_MAX;
  for (const auto& e : list_entries(root_ / "entries")) {
    auto j = read_json(e.dir / "entry.json");
    if (!j || !j->contains("parts")) continue;
    KeyParts other = parts_from_json((*j)["parts"]);
    auto diff = differing_parts(parts, other);
    // Prefer the same input: "what changed for this model" is the question.
    size_t score = diff.size() * 2 + (other.input_sha256 == parts.input_sha256 ? 0 : 1);
    if (score < best_count) {
      best_count = score;
      best = {true, other, diff};
    }
  }
  return best;
}

}  // namespace kiln::cache
