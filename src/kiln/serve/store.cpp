#include "kiln/serve/store.h"

#include "kiln/serve/job_request.h"
#include "kiln/util/utf8.h"

#include <condition_variable>
#include <mutex>
#include <set>

#include <sqlite3.h>

#include <chrono>

#include <fmt/format.h>

namespace kiln::serve {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { ok_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) == SQLITE_OK; }
  ~Statement() { sqlite3_finalize(stmt_); }
  bool ok() const { return ok_; }
  Statement& text(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& real(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  Statement& integer(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  int step() { return sqlite3_step(stmt_); }
  std::string column_text(int i) {
    auto* t = sqlite3_column_text(stmt_, i);
    return t ? reinterpret_cast<const char*>(t) : "";
  }
  double column_real(int i) { return sqlite3_column_double(stmt_, i); }
  int64_t column_int(int i) { return sqlite3_column_int64(stmt_, i); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  bool ok_ = false;
};

JobRecord read_row(Statement& s) {
  JobRecord j;
  j.id = s.column_text(0);
  j.state = parse_state(s.column_text(1));
  j.created_at = s.column_real(2);
  j.started_at = s.column_real(3);
  j.finished_at = s.column_real(4);
  j.request = nlohmann::json::parse(s.column_text(5), nullptr, false);
  j.input_path = s.column_text(6);
  j.result = nlohmann::json::parse(s.column_text(7).empty() ? "null" : s.column_text(7), nullptr, false);
  j.error_code = s.column_text(8);
  j.error_message = s.column_text(9);
  j.attempts = static_cast<int>(s.column_int(10));
  j.worker = s.column_text(11);
  j.lease_until = s.column_real(12);
  return j;
}


// Holds keys for the threads of this process (one host: no one else compiles).
class LocalKeyLocks {
 public:
  Result<std::unique_ptr<cache::KeyLocks::Held>> hold(const std::string& key, const std::atomic<bool>* cancel) {
    std::unique_lock<std::mutex> lock(mu_);
    while (held_.count(key)) {
      if (cancel && cancel->load()) return fail(Code::kCancelled, "cancelled while another job compiled the same module");
      released_.wait_for(lock, std::chrono::milliseconds(200));
    }
    held_.insert(key);
    return std::unique_ptr<cache::KeyLocks::Held>(new Released(this, key));
  }

 private:
  struct Released : cache::KeyLocks::Held {
    Released(LocalKeyLocks* owner, std::string key) : owner(owner), key(std::move(key)) {}
    ~Released() override {
      std::lock_guard<std::mutex> lock(owner->mu_);
      owner->held_.erase(key);
      owner->released_.notify_all();
    }
    LocalKeyLocks* owner;
    std::string key;
  };
  std::mutex mu_;
  std::condition_variable released_;
  std::set<std::string> held_;
};

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& file);
  ~SqliteStore() override { sqlite3_close(db_); }

  bool shared() const override { return false; }
  std::string describe() const override { return "the SQLite job database " + file_; }
  Status insert(const JobRecord& job, int64_t max_queued) override;
  Result<std::optional<JobRecord>> get(const std::string& id) override;
  Result<std::vector<JobRecord>> recent(int limit) override;
  Result<std::optional<JobRecord>> claim_next(const std::string& worker, double lease_seconds) override;
  Result<Lease> renew(const std::string& id, const std::string& worker, double lease_seconds) override;
  Result<bool> write_end(const std::string& id, const std::string& worker, JobState state,
                         const nlohmann::json& result, const std::string& error_code,
                         const std::string& error_message) override;
  Status release(const std::string& id, const std::string& worker) override;
  Result<std::optional<JobState>> cancel(const std::string& id) override;
  Result<int> expire(int max_attempts) override;
  Result<int> recover(int max_attempts, const std::vector<std::string>& crashed,
                      const std::string& crash_reason) override;
  Result<std::map<std::string, int64_t>> counts() override;
  Result<std::unique_ptr<Held>> hold(const std::string& key, const std::atomic<bool>* cancel) override {
    return locks_.hold(key, cancel);
  }

 private:
  SqliteStore(sqlite3* db, std::string file) : db_(db), file_(std::move(file)) {}
  Status exec(const std::string& sql);
  Error error(const char* what) { return Error{Code::kInternal, std::string("SQLite ") + what + ": " + sqlite3_errmsg(db_)}; }
  Result<int> expire_locked(int max_attempts);
  sqlite3* db_;
  std::string file_;
  std::mutex mu_;  // one connection, used by every thread in turn
  LocalKeyLocks locks_;
};

Result<std::unique_ptr<Store>> SqliteStore::open(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(Code::kFailedPrecondition, fmt::format("cannot open the job database {}: {}", file.string(), why));
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, file.string()));
  sqlite3_busy_timeout(db, 5000);
  KILN_TRY_STATUS(store->exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"));
  Statement version(db, "PRAGMA user_version");
  version.step();
  int64_t v = version.column_int(0);
  if (v == 0) {
    KILN_TRY_STATUS(store->exec(
        "CREATE TABLE IF NOT EXISTS jobs ("
        " id TEXT PRIMARY KEY, state TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL NOT NULL DEFAULT 0,"
        " finished_at REAL NOT NULL DEFAULT 0, request TEXT NOT NULL, input_path TEXT NOT NULL,"
        " result TEXT NOT NULL DEFAULT '', error_code TEXT NOT NULL DEFAULT '', error_message TEXT NOT NULL DEFAULT '',"
        " attempts INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs(state, created_at);"
        "PRAGMA user_version = 1;"));
    v = 1;
  }
  if (v == 1) {
    // Version 2: leases and cancel requests.
    KILN_TRY_STATUS(store->exec(
        "BEGIN; ALTER TABLE jobs ADD COLUMN worker TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE jobs ADD COLUMN lease_until REAL NOT NULL DEFAULT 0;"
        "ALTER TABLE jobs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;"
        "PRAGMA user_version = 2; COMMIT;"));
    v = 2;
  }
  if (v != 2) {
    return fail(Code::kFailedPrecondition, fmt::format("the job database {} has schema version {}; this kiln knows "
                                                       "versions up to 2 (use a kiln as new as the one that wrote it)",
                                                       file.string(), v));
  }
  return std::unique_ptr<Store>(std::move(store));
}

Status SqliteStore::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown";
    sqlite3_free(err);
    (void)sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return fail(Code::kInternal, "SQLite: " + why);
  }
  return {};
}

Status SqliteStore::insert(const JobRecord& j, int64_t max_queued) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement count(db_, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'");
  if (count.step() != SQLITE_ROW) return tl::unexpected(error("count"));
  if (int64_t queued = count.column_int(0); queued >= max_queued) {
    return fail(Code::kResourceExhausted, fmt::format("the queue is full ({} jobs waiting)", queued));
  }
  Statement s(db_, "INSERT INTO jobs (id, state, created_at, request, input_path) VALUES (?, ?, ?, ?, ?)");
  s.text(1, j.id).text(2, state_name(j.state)).real(3, j.created_at).text(4, stored_json(j.request)).text(5, j.input_path);
  if (s.step() != SQLITE_DONE) return tl::unexpected(error("insert"));
  return {};
}

Result<std::optional<JobRecord>> SqliteStore::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("SELECT {} FROM jobs WHERE id = ?", kJobColumns).c_str());
  s.text(1, id);
  int rc = s.step();
  if (rc == SQLITE_DONE) return std::optional<JobRecord>();
  if (rc != SQLITE_ROW) return tl::unexpected(error("select"));
  return std::optional<JobRecord>(read_row(s));
}

Result<std::vector<JobRecord>> SqliteStore::recent(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("SELECT {} FROM jobs ORDER BY created_at DESC LIMIT ?", kJobColumns).c_str());
  s.integer(1, limit);
  std::vector<JobRecord> out;
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out.push_back(read_row(s));
  if (rc != SQLITE_DONE) return tl::unexpected(error("select"));
  return out;
}

Result<std::optional<JobRecord>> SqliteStore::claim_next(const std::string& worker, double lease_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("UPDATE jobs SET state = 'running', started_at = ?1, attempts = attempts + 1, "
                               "worker = ?2, lease_until = ?1 + ?3, cancel_requested = 0 "
                               "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1) "
                               "RETURNING {}",
                               kJobColumns)
                       .c_str());
  s.real(1, now()).text(2, worker).real(3, lease_seconds);
  int rc = s.step();
  if (rc == SQLITE_DONE) return std::optional<JobRecord>();
  if (rc != SQLITE_ROW) return tl::unexpected(error("claim"));
  return std::optional<JobRecord>(read_row(s));
}

Result<Lease> SqliteStore::renew(const std::string& id, const std::string& worker, double lease_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running' "
                   "RETURNING cancel_requested");
  s.real(1, now() + lease_seconds).text(2, id).text(3, worker);
  int rc = s.step();
  if (rc == SQLITE_DONE) return Lease{false, false};
  if (rc != SQLITE_ROW) return tl::unexpected(error("renew"));
  return Lease{true, s.column_int(0) != 0};
}

Result<bool> SqliteStore::write_end(const std::string& id, const std::string& worker, JobState state,
                                 const nlohmann::json& result, const std::string& error_code,
                                 const std::string& error_message) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = ?, finished_at = ?, result = ?, error_code = ?, error_message = ?, "
                   "worker = '', lease_until = 0 WHERE id = ? AND worker = ? AND state = 'running'");
  s.text(1, state_name(state)).real(2, now()).text(3, stored_json(result)).text(4, error_code).text(5, error_message).text(6, id).text(7, worker);
  if (s.step() != SQLITE_DONE) return tl::unexpected(error("update"));
  return sqlite3_changes(db_) == 1;
}

Status SqliteStore::release(const std::string& id, const std::string& worker) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
                   "started_at = 0, worker = '', lease_until = 0, attempts = MAX(attempts - 1, 0) "
                   "WHERE id = ? AND worker = ? AND state = 'running'");
  s.text(1, id).text(2, worker);
  if (s.step() != SQLITE_DONE) return tl::unexpected(error("release"));
  return {};
}

Result<std::optional<JobState>> SqliteStore::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'queued'");
  s.real(1, now()).text(2, id);
  if (s.step() != SQLITE_DONE) return tl::unexpected(error("cancel"));
  Statement r(db_, "UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND state = 'running'");
  r.text(1, id);
  if (r.step() != SQLITE_DONE) return tl::unexpected(error("cancel"));
  Statement q(db_, "SELECT state FROM jobs WHERE id = ?");
  q.text(1, id);
  int rc = q.step();
  if (rc == SQLITE_DONE) return std::optional<JobState>();
  if (rc != SQLITE_ROW) return tl::unexpected(error("select"));
  return std::optional<JobState>(parse_state(q.column_text(0)));
}

Result<int> SqliteStore::expire_locked(int max_attempts) {
  Statement failed(db_, "UPDATE jobs SET state = 'failed', finished_at = ?1, error_code = 'internal', worker = '', "
                        "error_message = 'the job was started ' || attempts || ' times and its worker stopped each "
                        "time before it ended (killed, or its host lost); it is not retried again' "
                        "WHERE state = 'running' AND lease_until < ?1 AND attempts >= ?2");
  failed.real(1, now()).integer(2, max_attempts);
  if (failed.step() != SQLITE_DONE) return tl::unexpected(error("expire"));
  Statement requeued(db_, "UPDATE jobs SET state = 'queued', started_at = 0, worker = '', lease_until = 0 "
                          "WHERE state = 'running' AND lease_until < ?");
  requeued.real(1, now());
  if (requeued.step() != SQLITE_DONE) return tl::unexpected(error("expire"));
  return sqlite3_changes(db_);
}

Result<int> SqliteStore::expire(int max_attempts) {
  std::lock_guard<std::mutex> lock(mu_);
  return expire_locked(max_attempts);
}

Result<int> SqliteStore::recover(int max_attempts, const std::vector<std::string>& crashed,
                                 const std::string& crash_reason) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : crashed) {
    Statement s(db_, "UPDATE jobs SET state = 'failed', finished_at = ?, error_code = 'internal', error_message = ?, "
                     "worker = '' WHERE id = ? AND state = 'running'");
    s.real(1, now()).text(2, crash_reason).text(3, id);
    if (s.step() != SQLITE_DONE) return tl::unexpected(error("recover"));
  }
  // Only this host uses the database: whatever is still running was this
  // service's, and stopped when it did.
  Statement ended(db_, "UPDATE jobs SET lease_until = 0 WHERE state = 'running'");
  if (ended.step() != SQLITE_DONE) return tl::unexpected(error("recover"));
  return expire_locked(max_attempts);
}

Result<std::map<std::string, int64_t>> SqliteStore::counts() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int64_t> out;
  for (JobState state : all_states()) out[state_name(state)] = 0;
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  int rc;
  while ((rc = s.step()) == SQLITE_ROW) out[s.column_text(0)] = s.column_int(1);
  if (rc != SQLITE_DONE) return tl::unexpected(error("count"));
  return out;
}

}  // namespace

Result<std::unique_ptr<Store>> open_postgres(const std::string& url);  // postgres.cpp

const std::vector<JobState>& all_states() {
  static const std::vector<JobState> states = {JobState::kQueued, JobState::kRunning, JobState::kSucceeded,
                                               JobState::kFailed, JobState::kCancelled};
  return states;
}

const char* state_name(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kSucceeded: return "succeeded";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "failed";
}

JobState parse_state(const std::string& name) {
  for (JobState state : all_states()) {
    if (name == state_name(state)) return state;
  }
  return JobState::kFailed;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& where) {
  if (where.rfind("postgresql://", 0) == 0 || where.rfind("postgres://", 0) == 0) return open_postgres(where);
  return SqliteStore::open(where);
}

Result<bool> Store::finish(const std::string& id, const std::string& worker, JobState state,
                           const nlohmann::json& result, const std::string& error_code,
                           const std::string& error_message) {
  if (state == JobState::kSucceeded) {
    // The request never changes after insert: reading it outside the
    // backend's update is safe.
    auto job = KILN_TRY(get(id));
    if (!job) return false;
    auto request = read_job_request(job->request);
    Status complete = request ? check_succeeded(*request, result)
                              : fail(Code::kFailedPrecondition, "its request is unreadable: " + request.error().message);
    if (!complete) {
      return fail(Code::kFailedPrecondition,
                  fmt::format("refusing to record job {} as succeeded: {}", id, complete.error().message));
    }
  }
  return write_end(id, worker, state, result, error_code, util::to_valid_utf8(error_message));
}

Result<int64_t> Store::queued() {
  auto c = KILN_TRY(counts());
  return c[state_name(JobState::kQueued)];
}

}  // namespace kiln::serve
