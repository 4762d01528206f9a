// The service's durable state: jobs, their queue and their leases. Two
// implementations behind one interface:
//  - SQLite (WAL, synchronous=FULL), the embedded default: one host, a job
//    accepted is a job that survives kill -9;
//  - PostgreSQL, shared by a fleet of workers on any number of hosts: a
//    worker claims the oldest queued job with SELECT ... FOR UPDATE SKIP
//    LOCKED and holds a lease it renews while compiling; a job whose lease
//    ran out (its worker died, its host was lost) is queued again by any
//    other worker, up to a maximum number of starts.
// Times that leases compare are the database's clock, not the hosts'.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/cache/shared.h"
#include "kiln/util/error.h"

namespace kiln::serve {

// A job's life: queued -> running -> succeeded | failed | cancelled (and
// running -> queued again when its worker gives it back or dies).
enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
// "queued", ... as the API and the databases spell them.
const char* state_name(JobState state);
// The state a database row holds; kFailed for a spelling this kiln does not know.
JobState parse_state(const std::string& name);
const std::vector<JobState>& all_states();

struct JobRecord {
  std::string id;
  JobState state = JobState::kQueued;
  double created_at = 0, started_at = 0, finished_at = 0;  // unix seconds; 0 = not yet
  nlohmann::json request;  // targets and options, as submitted
  std::string input_path;  // where the upload is stored (a path, or an object key with a shared store)
  nlohmann::json result;   // per-target units once finished
  std::string error_code, error_message;
  int attempts = 0;
  std::string worker;       // who holds it while running
  double lease_until = 0;   // the database's clock
};

// The columns of a job's row, in the order both databases read them.
inline constexpr const char* kJobColumns =
    "id, state, created_at, started_at, finished_at, request, input_path, result, error_code, error_message, attempts, "
    "worker, lease_until";

// What a lease renewal found.
struct Lease {
  bool held = false;              // false: the job is no longer this worker's (expired and taken, or finished)
  bool cancel_requested = false;  // a client asked to cancel it
};

class Store : public cache::KeyLocks {
 public:
  // "postgresql://..." (or "postgres://..."): PostgreSQL; anything else is a
  // SQLite file. The schema is created or migrated; a newer one is refused.
  static Result<std::unique_ptr<Store>> open(const std::string& where);
  ~Store() override = default;

  // Whether other processes on other hosts use it too.
  virtual bool shared() const = 0;
  virtual std::string describe() const = 0;

  // Stores a new job, unless `max_queued` jobs are waiting already: the
  // count and the insert are one step, so the limit is exact
  // (kResourceExhausted).
  virtual Status insert(const JobRecord& job, int64_t max_queued = INT64_MAX) = 0;
  virtual Result<std::optional<JobRecord>> get(const std::string& id) = 0;
  virtual Result<std::vector<JobRecord>> recent(int limit) = 0;
  // Takes the oldest queued job for `worker`, with a lease of `lease_seconds`.
  virtual Result<std::optional<JobRecord>> claim_next(const std::string& worker, double lease_seconds) = 0;
  virtual Result<Lease> renew(const std::string& id, const std::string& worker, double lease_seconds) = 0;
  // Records the end of a job this worker holds; false when it no longer
  // holds it (nothing is written then). A job is succeeded only with a
  // finished unit for every unit its request plans (check_succeeded): any
  // other result is refused with kFailedPrecondition and nothing is written,
  // whichever backend keeps the job.
  Result<bool> finish(const std::string& id, const std::string& worker, JobState state, const nlohmann::json& result,
                      const std::string& error_code, const std::string& error_message);
  // Gives a held job back to the queue (a graceful stop); the start is not
  // counted. A job a client asked to cancel meanwhile ends cancelled instead.
  virtual Status release(const std::string& id, const std::string& worker) = 0;
  // queued -> cancelled at once; running -> stays running with a cancel
  // request that its worker sees at its next renewal. The state after the
  // call, or nullopt for an unknown job.
  virtual Result<std::optional<JobState>> cancel(const std::string& id) = 0;
  // Jobs whose lease ran out are queued again, or failed once they have
  // been started `max_attempts` times. Returns how many were queued again.
  virtual Result<int> expire(int max_attempts) = 0;
  // At start: the jobs in `crashed` (running here when this service died of
  // its own fatal signal) fail with `crash_reason`; then, with a store only
  // this host uses, every job left running is handled as expired.
  virtual Result<int> recover(int max_attempts, const std::vector<std::string>& crashed = {},
                              const std::string& crash_reason = "") = 0;
  virtual Result<std::map<std::string, int64_t>> counts() = 0;
  Result<int64_t> queued();

 protected:
  // The backend's half of finish(), called once the result is checked.
  virtual Result<bool> write_end(const std::string& id, const std::string& worker, JobState state,
                                 const nlohmann::json& result, const std::string& error_code,
                                 const std::string& error_message) = 0;
};

// "postgresql://user:secret@host/db" -> "postgresql://user@host/db": what
// logs and messages show of a queue's address.
std::string without_password(const std::string& url);

}  // namespace kiln::serve
