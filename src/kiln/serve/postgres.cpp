// The job store in PostgreSQL, shared by every worker of a fleet. libpq is
// loaded on first use (dlopen "libpq.so.5"), so the kiln binary runs on
// hosts without it; only a service given a postgresql:// queue needs it.
#include <libpq-fe.h>

#include <dlfcn.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "kiln/serve/store.h"
#include "kiln/serve/job_request.h"
#include "kiln/util/strings.h"

namespace kiln::serve {
namespace {

struct Pq {
  decltype(&PQconnectdb) connectdb;
  decltype(&PQstatus) status;
  decltype(&PQerrorMessage) error_message;
  decltype(&PQfinish) finish;
  decltype(&PQreset) reset;
  decltype(&PQexecParams) exec_params;
  decltype(&PQresultStatus) result_status;
  decltype(&PQresultErrorMessage) result_error_message;
  decltype(&PQclear) clear;
  decltype(&PQntuples) ntuples;
  decltype(&PQgetvalue) getvalue;
  decltype(&PQcmdTuples) cmd_tuples;
  decltype(&PQdb) db;
  decltype(&PQhost) host;
  decltype(&PQport) port;
};

Result<const Pq*> pq() {
  static Pq api;
  static std::string error;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = ::dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      error = ::dlerror();
      return;
    }
    auto get = [&](const char* name) {
      void* f = ::dlsym(lib, name);
      if (!f) error = std::string("libpq.so.5 lacks ") + name;
      return f;
    };
    api.connectdb = reinterpret_cast<decltype(api.connectdb)>(get("PQconnectdb"));
    api.status = reinterpret_cast<decltype(api.status)>(get("PQstatus"));
    api.error_message = reinterpret_cast<decltype(api.error_message)>(get("PQerrorMessage"));
    api.finish = reinterpret_cast<decltype(api.finish)>(get("PQfinish"));
    api.reset = reinterpret_cast<decltype(api.reset)>(get("PQreset"));
    api.exec_params = reinterpret_cast<decltype(api.exec_params)>(get("PQexecParams"));
    api.result_status = reinterpret_cast<decltype(api.result_status)>(get("PQresultStatus"));
    api.result_error_message = reinterpret_cast<decltype(api.result_error_message)>(get("PQresultErrorMessage"));
    api.clear = reinterpret_cast<decltype(api.clear)>(get("PQclear"));
    api.ntuples = reinterpret_cast<decltype(api.ntuples)>(get("PQntuples"));
    api.getvalue = reinterpret_cast<decltype(api.getvalue)>(get("PQgetvalue"));
    api.cmd_tuples = reinterpret_cast<decltype(api.cmd_tuples)>(get("PQcmdTuples"));
    api.db = reinterpret_cast<decltype(api.db)>(get("PQdb"));
    api.host = reinterpret_cast<decltype(api.host)>(get("PQhost"));
    api.port = reinterpret_cast<decltype(api.port)>(get("PQport"));
  });
  if (!error.empty()) {
    return fail(Code::kFailedPrecondition,
                "a postgresql:// queue needs libpq (" + error + "); install libpq5 (apt-get install libpq5)");
  }
  return &api;
}

// The database's clock, in unix seconds: leases compare times of one clock.
constexpr const char* kNow = "extract(epoch from clock_timestamp())::double precision";
// The schema versions this kiln knows, in order; applied at start under a
// lock, so workers starting together migrate once.
const std::vector<const char*> kMigrations = {
    "CREATE TABLE jobs (id text PRIMARY KEY, state text NOT NULL, created_at double precision NOT NULL,"
    " started_at double precision NOT NULL DEFAULT 0, finished_at double precision NOT NULL DEFAULT 0,"
    " request text NOT NULL, input_path text NOT NULL, result text NOT NULL DEFAULT '',"
    " error_code text NOT NULL DEFAULT '', error_message text NOT NULL DEFAULT '', attempts integer NOT NULL DEFAULT 0,"
    " worker text NOT NULL DEFAULT '', lease_until double precision NOT NULL DEFAULT 0,"
    " cancel_requested boolean NOT NULL DEFAULT false);"
    "CREATE INDEX jobs_by_state ON jobs (state, created_at)",
};
// Advisory lock ids of kiln's own (the key locks use hashes of cache keys).
constexpr const char* kMigrationLock = "7160711";
constexpr const char* kInsertLock = "7160712";

// A result that clears itself.
class Rows {
 public:
  Rows(const Pq* api, PGresult* r) : api_(api), r_(r) {}
  Rows(Rows&& o) noexcept : api_(o.api_), r_(o.r_) { o.r_ = nullptr; }
  ~Rows() {
    if (r_) api_->clear(r_);
  }
  int size() const { return api_->ntuples(r_); }
  std::string text(int row, int col) const { return api_->getvalue(r_, row, col); }
  double real(int row, int col) const { return std::strtod(api_->getvalue(r_, row, col), nullptr); }
  int64_t integer(int row, int col) const { return std::strtoll(api_->getvalue(r_, row, col), nullptr, 10); }
  int64_t affected() const { return std::strtoll(api_->cmd_tuples(r_), nullptr, 10); }
  ExecStatusType status() const { return api_->result_status(r_); }
  std::string error() const { return api_->result_error_message(r_); }

 private:
  const Pq* api_;
  PGresult* r_;
};

JobRecord read_row(const Rows& r, int i) {
  JobRecord j;
  j.id = r.text(i, 0);
  j.state = parse_state(r.text(i, 1));
  j.created_at = r.real(i, 2);
  j.started_at = r.real(i, 3);
  j.finished_at = r.real(i, 4);
  j.request = nlohmann::json::parse(r.text(i, 5), nullptr, false);
  j.input_path = r.text(i, 6);
  j.result = nlohmann::json::parse(r.text(i, 7).empty() ? "null" : r.text(i, 7), nullptr, false);
  j.error_code = r.text(i, 8);
  j.error_message = r.text(i, 9);
  j.attempts = static_cast<int>(r.integer(i, 10));
  j.worker = r.text(i, 11);
  j.lease_until = r.real(i, 12);
  return j;
}

}  // namespace

std::string without_password(const std::string& url) {
  size_t scheme = url.find("://");
  size_t at = url.find('@');
  if (scheme == std::string::npos || at == std::string::npos) return url;
  size_t colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon) + url.substr(at);
}

namespace {

class Connection {
 public:
  static Result<Connection> open(const Pq* api, const std::string& url, const std::string& shown) {
    PGconn* c = api->connectdb(url.c_str());
    if (!c || api->status(c) != CONNECTION_OK) {
      std::string why(util::trim(c ? api->error_message(c) : "out of memory"));
      if (c) api->finish(c);
      return fail(Code::kUnavailable, fmt::format("cannot connect to the PostgreSQL queue {}: {}; is the server running "
                                                  "and the address (--queue, KILN_QUEUE) right?",
                                                  shown, why));
    }
    Connection conn(api, c);
    // Notices ("relation already exists, skipping") are not for kiln's log.
    KILN_TRY(conn.exec("SET client_min_messages = warning", {}, false));
    return conn;
  }
  Connection(Connection&& o) noexcept : api_(o.api_), c_(o.c_) { o.c_ = nullptr; }
  Connection& operator=(Connection&& o) noexcept {
    std::swap(c_, o.c_);
    api_ = o.api_;
    return *this;
  }
  ~Connection() {
    if (c_) api_->finish(c_);
  }

  // One statement with text parameters. A broken connection is reset once
  // and the statement tried again (the statements kiln runs outside a
  // transaction are safe to repeat or have no effect twice).
  Result<Rows> exec(const std::string& sql, const std::vector<std::string>& params = {}, bool retry = true) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    for (int attempt = 0;; ++attempt) {
      Rows r(api_, api_->exec_params(c_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                                     nullptr, 0));
      auto st = r.status();
      if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
      if (api_->status(c_) != CONNECTION_OK && retry && attempt == 0) {
        api_->reset(c_);
        if (api_->status(c_) == CONNECTION_OK) continue;
      }
      std::string why(util::trim(api_->status(c_) != CONNECTION_OK ? api_->error_message(c_) : r.error()));
      bool lost = api_->status(c_) != CONNECTION_OK;
      return fail(lost ? Code::kUnavailable : Code::kInternal,
                  lost ? "the PostgreSQL queue cannot be reached: " + why : "PostgreSQL: " + why);
    }
  }

 private:
  Connection(const Pq* api, PGconn* c) : api_(api), c_(c) {}
  const Pq* api_;
  PGconn* c_;
};

class PgStore final : public Store {
 public:
  PgStore(const Pq* api, std::string url, Connection c)
      : api_(api), url_(std::move(url)), shown_(without_password(url_)), c_(std::move(c)) {}

  Status migrate() {
    std::lock_guard<std::mutex> lock(mu_);
    KILN_TRY(c_.exec("BEGIN"));
    auto migrated = [&]() -> Status {
      KILN_TRY(c_.exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")", {}, false));
      KILN_TRY(c_.exec("CREATE TABLE IF NOT EXISTS kiln_schema (version integer NOT NULL)", {}, false));
      auto v = KILN_TRY(c_.exec("SELECT coalesce(max(version), 0) FROM kiln_schema", {}, false));
      int64_t version = v.integer(0, 0);
      if (version > static_cast<int64_t>(kMigrations.size())) {
        return fail(Code::kFailedPrecondition, fmt::format("the PostgreSQL queue {} has schema version {}; this kiln "
                                                           "knows versions up to {} (use a kiln as new as the one "
                                                           "that wrote it)", shown_, version, kMigrations.size()));
      }
      for (size_t i = static_cast<size_t>(version); i < kMigrations.size(); ++i) {
        for (const auto& statement : split_statements(kMigrations[i])) KILN_TRY(c_.exec(statement, {}, false));
        KILN_TRY(c_.exec("INSERT INTO kiln_schema (version) VALUES ($1)", {std::to_string(i + 1)}, false));
      }
      return {};
    }();
    if (!migrated) {
      (void)c_.exec("ROLLBACK", {}, false);
      return migrated;
    }
    KILN_TRY(c_.exec("COMMIT", {}, false));
    return {};
  }

  bool shared() const override { return true; }
  std::string describe() const override { return "the PostgreSQL queue " + shown_; }

  Status insert(const JobRecord& j, int64_t max_queued) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Counted and stored in one transaction, serialized by a lock of the
    // transaction's length: the limit is exact across the fleet.
    KILN_TRY(c_.exec("BEGIN"));
    auto inserted = [&]() -> Status {
      KILN_TRY(c_.exec(std::string("SELECT pg_advisory_xact_lock(") + kInsertLock + ")", {}, false));
      auto count = KILN_TRY(c_.exec("SELECT count(*) FROM jobs WHERE state = 'queued'", {}, false));
      if (int64_t queued = count.integer(0, 0); queued >= max_queued) {
        return fail(Code::kResourceExhausted, fmt::format("the queue is full ({} jobs waiting)", queued));
      }
      KILN_TRY(c_.exec("INSERT INTO jobs (id, state, created_at, request, input_path) VALUES ($1, $2, $3, $4, $5)",
                       {j.id, state_name(j.state), fmt::format("{:.6f}", j.created_at), stored_json(j.request), j.input_path}, false));
      return {};
    }();
    if (!inserted) {
      (void)c_.exec("ROLLBACK", {}, false);
      return inserted;
    }
    KILN_TRY(c_.exec("COMMIT", {}, false));
    return {};
  }

  Result<std::optional<JobRecord>> get(const std::string& id) override {
    auto r = KILN_TRY(run(fmt::format("SELECT {} FROM jobs WHERE id = $1", kJobColumns), {id}));
    if (r.size() == 0) return std::optional<JobRecord>();
    return std::optional<JobRecord>(read_row(r, 0));
  }

  Result<std::vector<JobRecord>> recent(int limit) override {
    auto r = KILN_TRY(run(fmt::format("SELECT {} FROM jobs ORDER BY created_at DESC LIMIT $1", kJobColumns),
                          {std::to_string(limit)}));
    std::vector<JobRecord> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(read_row(r, i));
    return out;
  }

  Result<std::optional<JobRecord>> claim_next(const std::string& worker, double lease_seconds) override {
    // SKIP LOCKED: workers claiming at once each take a different job
    // without waiting for one another.
    auto r = KILN_TRY(run(fmt::format("UPDATE jobs SET state = 'running', started_at = {0}, attempts = attempts + 1, "
                                      "worker = $1, lease_until = {0} + $2, cancel_requested = false "
                                      "WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at "
                                      "LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING {1}",
                                      kNow, kJobColumns),
                          {worker, fmt::format("{:.3f}", lease_seconds)}));
    if (r.size() == 0) return std::optional<JobRecord>();
    return std::optional<JobRecord>(read_row(r, 0));
  }

  Result<Lease> renew(const std::string& id, const std::string& worker, double lease_seconds) override {
    auto r = KILN_TRY(run(fmt::format("UPDATE jobs SET lease_until = {} + $3 WHERE id = $1 AND worker = $2 AND "
                                      "state = 'running' RETURNING cancel_requested", kNow),
                          {id, worker, fmt::format("{:.3f}", lease_seconds)}));
    if (r.size() == 0) return Lease{false, false};
    return Lease{true, r.text(0, 0) == "t"};
  }

  Result<bool> write_end(const std::string& id, const std::string& worker, JobState state,
                         const nlohmann::json& result, const std::string& error_code,
                         const std::string& error_message) override {
    auto r = KILN_TRY(run(fmt::format("UPDATE jobs SET state = $3, finished_at = {}, result = $4, error_code = $5, "
                                      "error_message = $6, worker = '', lease_until = 0 "
                                      "WHERE id = $1 AND worker = $2 AND state = 'running'", kNow),
                          {id, worker, state_name(state), stored_json(result), error_code, error_message}));
    return r.affected() == 1;
  }

  Status release(const std::string& id, const std::string& worker) override {
    KILN_TRY(run("UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'queued' END, "
                 "started_at = 0, worker = '', lease_until = 0, attempts = greatest(attempts - 1, 0) WHERE id = $1 AND worker = $2 AND state = 'running'",
                 {id, worker}));
    return {};
  }

  Result<std::optional<JobState>> cancel(const std::string& id) override {
    KILN_TRY(run(fmt::format("UPDATE jobs SET state = 'cancelled', finished_at = {} WHERE id = $1 AND state = 'queued'",
                             kNow), {id}));
    KILN_TRY(run("UPDATE jobs SET cancel_requested = true WHERE id = $1 AND state = 'running'", {id}));
    auto r = KILN_TRY(run("SELECT state FROM jobs WHERE id = $1", {id}));
    if (r.size() == 0) return std::optional<JobState>();
    return std::optional<JobState>(parse_state(r.text(0, 0)));
  }

  Result<int> expire(int max_attempts) override {
    KILN_TRY(run(fmt::format("UPDATE jobs SET state = 'failed', finished_at = {0}, error_code = 'internal', "
                             "worker = '', error_message = 'the job was started ' || attempts || ' times and its "
                             "worker stopped each time before it ended (killed, or its host lost); it is not retried "
                             "again' WHERE state = 'running' AND lease_until < {0} AND attempts >= $1", kNow),
                 {std::to_string(max_attempts)}));
    auto r = KILN_TRY(run(fmt::format("UPDATE jobs SET state = 'queued', started_at = 0, worker = '', lease_until = 0 "
                                      "WHERE state = 'running' AND lease_until < {}", kNow)));
    return static_cast<int>(r.affected());
  }

  Result<int> recover(int max_attempts, const std::vector<std::string>& crashed,
                      const std::string& crash_reason) override {
    for (const auto& id : crashed) {
      KILN_TRY(run(fmt::format("UPDATE jobs SET state = 'failed', finished_at = {}, error_code = 'internal', "
                               "error_message = $2, worker = '' WHERE id = $1 AND state = 'running'", kNow),
                   {id, crash_reason}));
    }
    // Other workers' running jobs are theirs until their leases run out.
    return expire(max_attempts);
  }

  Result<std::map<std::string, int64_t>> counts() override {
    std::map<std::string, int64_t> out;
    for (JobState state : all_states()) out[state_name(state)] = 0;
    auto r = KILN_TRY(run("SELECT state, count(*) FROM jobs GROUP BY state"));
    for (int i = 0; i < r.size(); ++i) out[r.text(i, 0)] = r.integer(i, 1);
    return out;
  }

  // A session-level advisory lock on a connection of its own: held until the
  // result is destroyed, or until this process dies (the server then ends
  // the session and the lock with it).
  Result<std::unique_ptr<Held>> hold(const std::string& key, const std::atomic<bool>* cancel) override {
    auto c = KILN_TRY(Connection::open(api_, url_, shown_));
    // The first 15 hex digits of the key: a positive bigint.
    std::string id = std::to_string(std::strtoll(key.substr(0, 15).c_str(), nullptr, 16));
    while (true) {
      auto r = KILN_TRY(c.exec("SELECT pg_try_advisory_lock($1)", {id}));
      if (r.text(0, 0) == "t") break;
      if (cancel && cancel->load()) return fail(Code::kCancelled, "cancelled while another worker compiled the same module");
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    struct Lock : Held {
      explicit Lock(Connection c) : c(std::move(c)) {}
      Connection c;  // closing the session releases the lock
    };
    return std::unique_ptr<Held>(new Lock(std::move(c)));
  }

 private:
  static std::vector<std::string> split_statements(const std::string& sql) {
    std::vector<std::string> out;
    size_t start = 0;
    for (size_t semi; (semi = sql.find(';', start)) != std::string::npos; start = semi + 1) {
      out.push_back(sql.substr(start, semi - start));
    }
    if (start < sql.size()) out.push_back(sql.substr(start));
    return out;
  }
  Result<Rows> run(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::lock_guard<std::mutex> lock(mu_);
    return c_.exec(sql, params).map_error([&](Error e) { return e.context(describe()); });
  }

  const Pq* api_;
  std::string url_, shown_;
  std::mutex mu_;  // one connection, used by every thread in turn
  Connection c_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_postgres(const std::string& url) {
  auto api = KILN_TRY(pq());
  auto c = KILN_TRY(Connection::open(api, url, without_password(url)));
  auto store = std::make_unique<PgStore>(api, url, std::move(c));
  KILN_TRY_STATUS(store->migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace kiln::serve
