#include "kiln/serve/store.h"

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

constexpr const char* kColumns =
    "id, state, created_at, started_at, finished_at, request, input_path, result, error_code, error_message, attempts";

JobRecord read_row(Statement& s) {
  JobRecord j;
  j.id = s.column_text(0);
  j.state = s.column_text(1);
  j.created_at = s.column_real(2);
  j.started_at = s.column_real(3);
  j.finished_at = s.column_real(4);
  j.request = nlohmann::json::parse(s.column_text(5), nullptr, false);
  j.input_path = s.column_text(6);
  j.result = nlohmann::json::parse(s.column_text(7).empty() ? "null" : s.column_text(7), nullptr, false);
  j.error_code = s.column_text(8);
  j.error_message = s.column_text(9);
  j.attempts = static_cast<int>(s.column_int(10));
  return j;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string why = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return fail(Code::kFailedPrecondition, fmt::format("cannot open the job database {}: {}", file.string(), why));
  }
  std::unique_ptr<Store> store(new Store(db));
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
  } else if (v != 1) {
    return fail(Code::kFailedPrecondition, fmt::format("the job database {} has schema version {}; this kiln knows "
                                                       "version 1 (use a kiln as new as the one that wrote it)",
                                                       file.string(), v));
  }
  return store;
}

Store::~Store() { sqlite3_close(db_); }

Status Store::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string why = err ? err : "unknown";
    sqlite3_free(err);
    return fail(Code::kInternal, "SQLite: " + why);
  }
  return {};
}

Status Store::insert(const JobRecord& j, int64_t max_queued) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement count(db_, "SELECT COUNT(*) FROM jobs WHERE state = 'queued'");
  if (count.step() != SQLITE_ROW) return fail(Code::kInternal, std::string("SQLite count: ") + sqlite3_errmsg(db_));
  if (int64_t queued = count.column_int(0); queued >= max_queued) {
    return fail(Code::kResourceExhausted, std::to_string(queued));
  }
  Statement s(db_, "INSERT INTO jobs (id, state, created_at, request, input_path) VALUES (?, ?, ?, ?, ?)");
  s.text(1, j.id).text(2, j.state).real(3, j.created_at).text(4, j.request.dump()).text(5, j.input_path);
  if (s.step() != SQLITE_DONE) return fail(Code::kInternal, std::string("SQLite insert: ") + sqlite3_errmsg(db_));
  return {};
}

std::optional<JobRecord> Store::get(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("SELECT {} FROM jobs WHERE id = ?", kColumns).c_str());
  s.text(1, id);
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

std::vector<JobRecord> Store::recent(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("SELECT {} FROM jobs ORDER BY created_at DESC LIMIT ?", kColumns).c_str());
  s.integer(1, limit);
  std::vector<JobRecord> out;
  while (s.step() == SQLITE_ROW) out.push_back(read_row(s));
  return out;
}

std::optional<JobRecord> Store::claim_next() {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, fmt::format("UPDATE jobs SET state = 'running', started_at = ?, attempts = attempts + 1 "
                               "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at LIMIT 1) "
                               "RETURNING {}",
                               kColumns)
                       .c_str());
  s.real(1, now());
  if (s.step() != SQLITE_ROW) return std::nullopt;
  return read_row(s);
}

Status Store::finish(const std::string& id, const std::string& state, const nlohmann::json& result,
                     const std::string& error_code, const std::string& error_message) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = ?, finished_at = ?, result = ?, error_code = ?, error_message = ? WHERE id = ?");
  s.text(1, state).real(2, now()).text(3, result.dump()).text(4, error_code).text(5, error_message).text(6, id);
  if (s.step() != SQLITE_DONE) return fail(Code::kInternal, std::string("SQLite update: ") + sqlite3_errmsg(db_));
  return {};
}

std::optional<std::string> Store::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  Statement s(db_, "UPDATE jobs SET state = 'cancelled', finished_at = ? WHERE id = ? AND state = 'queued'");
  s.real(1, now()).text(2, id);
  s.step();
  Statement q(db_, "SELECT state FROM jobs WHERE id = ?");
  q.text(1, id);
  if (q.step() != SQLITE_ROW) return std::nullopt;
  return q.column_text(0);
}

Result<int> Store::recover(int max_attempts, const std::vector<std::string>& crashed, const std::string& crash_reason) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& id : crashed) {
    Statement s(db_, "UPDATE jobs SET state = 'failed', finished_at = ?, error_code = 'internal', error_message = ? "
                     "WHERE id = ? AND state = 'running'");
    s.real(1, now()).text(2, crash_reason).text(3, id);
    s.step();
  }
  Statement failed(db_, "UPDATE jobs SET state = 'failed', finished_at = ?, error_code = 'internal', "
                        "error_message = 'kiln serve stopped while this job ran, ' || attempts || ' times; it is not "
                        "retried again' WHERE state = 'running' AND attempts >= ?");
  failed.real(1, now()).integer(2, max_attempts);
  failed.step();
  Statement requeued(db_, "UPDATE jobs SET state = 'queued', started_at = 0 WHERE state = 'running'");
  requeued.step();
  return sqlite3_changes(db_);
}

std::map<std::string, int64_t> Store::counts() {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, int64_t> out = {{"queued", 0}, {"running", 0}, {"succeeded", 0}, {"failed", 0}, {"cancelled", 0}};
  Statement s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  while (s.step() == SQLITE_ROW) out[s.column_text(0)] = s.column_int(1);
  return out;
}

int64_t Store::queued() { return counts()["queued"]; }

}  // namespace kiln::serve
