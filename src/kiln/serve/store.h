// The service's durable state: jobs and their queue in SQLite (WAL,
// synchronous=FULL), so a job accepted is a job that survives kill -9.
// Schema version is SQLite's user_version (1); an unknown version is refused.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

struct sqlite3;

namespace kiln::serve {

struct JobRecord {
  std::string id;
  std::string state;  // queued, running, succeeded, failed, cancelled
  double created_at = 0, started_at = 0, finished_at = 0;  // unix seconds; 0 = not yet
  nlohmann::json request;  // targets and options, as submitted
  std::string input_path;  // where the upload is stored
  nlohmann::json result;   // per-target units once finished
  std::string error_code, error_message;
  int attempts = 0;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& file);
  ~Store();

  // Stores a new job, unless `max_queued` jobs are waiting already: the
  // count and the insert are one step, so the limit is exact
  // (kResourceExhausted, with the count in the message).
  Status insert(const JobRecord& job, int64_t max_queued = INT64_MAX);
  std::optional<JobRecord> get(const std::string& id);
  std::vector<JobRecord> recent(int limit);
  // Takes the oldest queued job and marks it running; nullopt when none.
  std::optional<JobRecord> claim_next();
  Status finish(const std::string& id, const std::string& state, const nlohmann::json& result,
                const std::string& error_code, const std::string& error_message);
  // queued -> cancelled at once; running -> stays running (the worker stops it).
  // Returns the state after the call, or nullopt for an unknown job.
  std::optional<std::string> cancel(const std::string& id);
  // After a restart: jobs left running are queued again, or failed once
  // they have been started `max_attempts` times.
  // At start: the jobs in `crashed` (running when the service crashed)
  // fail with `crash_reason`; other running jobs are re-queued, or fail
  // once they have been started max_attempts times.
  Result<int> recover(int max_attempts, const std::vector<std::string>& crashed = {},
                      const std::string& crash_reason = "");
  std::map<std::string, int64_t> counts();
  int64_t queued();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  Status exec(const std::string& sql);
  sqlite3* db_;
  std::mutex mu_;  // one connection, used by every thread in turn
};

}  // namespace kiln::serve
