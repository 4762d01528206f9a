// The HTTP API of `kiln serve`: routing, auth, submissions (a StableHLO
// upload plus options in the job-file schema, checked and stored in the job
// store), status, cancel, artifacts, targets and metrics. Compiling is the
// Worker's (worker.h), which `kiln serve` runs beside the API on the same
// host unless --workers 0. HTTP framing lives in http.cpp; this file only
// sees parsed requests.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kiln/blob/bucket.h"
#include "kiln/cache/shared.h"
#include "kiln/cache/store.h"
#include "kiln/compile/compile.h"
#include "kiln/compile/executor.h"
#include "kiln/config/config.h"
#include "kiln/serve/store.h"
#include "kiln/serve/worker.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::serve {

namespace fs = std::filesystem;

struct ServiceOptions {
  fs::path data_dir;  // this host's: staging, uploads and artifacts (a cache of them with a shared store)
  // Where jobs are kept: empty is DATA_DIR/kiln.db (SQLite, this host
  // only); postgresql://... is shared by a fleet.
  std::string queue;
  // Where uploads, artifacts and the shared compile cache are kept for the
  // fleet: s3://bucket/prefix or a folder all hosts see; empty: DATA_DIR
  // (this host only). A shared queue needs a shared store.
  std::string store;
  double lease_seconds = 30;  // a worker that stops renewing loses its job after this
  std::vector<std::string> tokens;  // bearer tokens; at least one
  uint64_t max_upload = 256ull << 20;
  int max_queue = 64;
  int workers = 1;  // 0: the HTTP front only (a fleet's workers compile)
  std::chrono::seconds job_timeout{1800};
  // On stop, how long running compiles may go on before they are stopped
  // and their jobs queued again.
  std::chrono::milliseconds grace{30000};
  int max_attempts = 3;  // starts of one job across restarts before it is failed
  fs::path tuning_dir;   // the tuning database compiles use; empty: none
};

struct Request {
  std::string method;
  std::string path;  // without the query
  std::string authorization;
  std::string content_type;
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  fs::path file;  // when set, the body is this file's contents
};

// A JSON response, and the error body every endpoint answers with:
// {"error": {"code": ..., "message": ...}}.
Response json_response(int status, const nlohmann::json& body);
Response error_response(int status, const std::string& code, const std::string& message);
Response error_response(const Error& e);  // the status that kiln's error code maps to

class Service {
 public:
  // Opens the job store and the shared store; with workers > 0 starts a
  // Worker (worker.h) on this host, which recovers the jobs a crash left.
  static Result<std::unique_ptr<Service>> start(ServiceOptions options, toolchain::Toolchain tools,
                                                std::unique_ptr<compile::Executor> executor,
                                                std::optional<cache::Store> cache);
  ~Service();

  Response handle(const Request& request);
  // Counts a response sent, by status (kiln_http_responses_total).
  void count_response(int status);
  // Constant-time check of an Authorization header.
  bool authorized(const std::string& header) const;
  // The probes (/healthz, /readyz) are open; every other path needs a token.
  static bool needs_token(const std::string& path) { return path != "/healthz" && path != "/readyz"; }
  uint64_t max_upload() const { return options_.max_upload; }
  // Stops this host's worker gracefully (worker.h): nothing is lost and no
  // job is recorded as succeeded without all its units.
  void stop();
  bool draining() const { return stopping_; }
  int recovered() const { return recovered_; }

 private:
  Service(ServiceOptions options, toolchain::Toolchain tools, std::string executor_name, Backends backends)
      : options_(std::move(options)), tools_(std::move(tools)), executor_name_(std::move(executor_name)),
        store_(std::move(backends.store)), bucket_(std::move(backends.bucket)) {}

  Response submit(const Request& request);
  Response queue_full(int64_t queued);
  Response job_status(const std::string& id);
  Response cancel(const std::string& id);
  Response artifact(const std::string& id, const std::string& file);
  Response metrics();
  Response targets();
  nlohmann::json job_json(const JobRecord& job) const;

  ServiceOptions options_;
  toolchain::Toolchain tools_;
  std::string executor_name_;
  std::shared_ptr<Store> store_;
  std::shared_ptr<blob::Bucket> bucket_;  // a shared store, or null
  std::unique_ptr<Worker> worker_;        // null: the HTTP front only
  std::atomic<bool> stopping_{false};
  int recovered_ = 0;

  std::mutex metrics_mu_;
  std::map<int, uint64_t> responses_;
};

// HTTP status for an error code.
int http_status(Code code);

}  // namespace kiln::serve
