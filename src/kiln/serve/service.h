// The compile service behind `kiln serve`: accepts jobs (a StableHLO upload
// plus options in the job-file schema), keeps them in SQLite, compiles them
// on a bounded pool of workers through the same executor and cache as the
// CLI, and answers status, artifact, cancel, target and metrics requests.
// HTTP framing lives in http.cpp; this file only sees parsed requests.
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
  // Opens the database, recovers jobs a crash left running, starts workers.
  static Result<std::unique_ptr<Service>> start(ServiceOptions options, toolchain::Toolchain tools,
                                                std::unique_ptr<compile::Executor> executor,
                                                std::optional<cache::Store> cache);
  ~Service();

  Response handle(const Request& request);
  // Constant-time check of an Authorization header.
  bool authorized(const std::string& header) const;
  // The probes (/healthz, /readyz) are open; every other path needs a token.
  static bool needs_token(const std::string& path) { return path != "/healthz" && path != "/readyz"; }
  uint64_t max_upload() const { return options_.max_upload; }
  // Stops the workers (a graceful stop: running compiles are stopped and
  // their jobs go back to the queue for any worker to take).
  void stop();
  bool draining() const { return stopping_; }
  const std::string& worker_id() const { return worker_id_; }
  int recovered() const { return recovered_; }

 private:
  Service(ServiceOptions options, toolchain::Toolchain tools, std::unique_ptr<compile::Executor> executor,
          std::optional<cache::Store> cache, std::unique_ptr<Store> store, std::unique_ptr<blob::Bucket> bucket)
      : options_(std::move(options)), tools_(std::move(tools)), executor_(std::move(executor)),
        cache_(std::move(cache)), store_(std::move(store)), bucket_(std::move(bucket)) {
    if (bucket_) shared_cache_.emplace(*bucket_);
  }

  Response submit(const Request& request);
  Response queue_full(int64_t queued);
  Response job_status(const std::string& id);
  Response cancel(const std::string& id);
  Response artifact(const std::string& id, const std::string& file);
  Response metrics();
  Response targets();
  void worker_loop();
  void lease_loop();
  void run_job(JobRecord job);
  std::shared_ptr<std::atomic<bool>> start_running(const JobRecord& job);
  void finish_running(const JobRecord& job, bool cancelled, const nlohmann::json& units,
                      const std::optional<Error>& first_error);
  void count_compile(const compile::Outcome& outcome);
  Status store_artifacts(const std::string& job_id, const compile::Outcome& outcome);
  // The job's upload as a local file (fetched from the shared store if needed).
  Result<fs::path> local_input(const JobRecord& job);
  // Records a job's end; retried while the queue cannot be reached.
  void record_end(const JobRecord& job, JobState state, const nlohmann::json& units,
                  const std::optional<Error>& error);
  nlohmann::json job_json(const JobRecord& job) const;

  ServiceOptions options_;
  toolchain::Toolchain tools_;
  std::unique_ptr<compile::Executor> executor_;
  std::optional<cache::Store> cache_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<blob::Bucket> bucket_;  // a shared store, or null
  std::optional<cache::Shared> shared_cache_;
  std::string worker_id_;  // host, pid and a random part: who holds a lease
  std::vector<std::thread> workers_;
  std::thread leases_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> cancels_;  // running jobs
  std::map<std::string, bool> lost_;  // running jobs whose lease another worker took over
  int recovered_ = 0;

  // Metrics since start.
  std::mutex metrics_mu_;
  std::vector<double> bucket_bounds_ = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
  std::vector<uint64_t> buckets_ = std::vector<uint64_t>(13, 0);
  double duration_sum_ = 0;
  uint64_t duration_count_ = 0, cache_hits_ = 0, cache_misses_ = 0, shared_hits_ = 0;
  std::map<int, uint64_t> responses_;
};

// HTTP status for an error code.
int http_status(Code code);

}  // namespace kiln::serve
