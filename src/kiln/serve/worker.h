// The compiling half of the service: claims jobs from the store, holds and
// renews their leases, runs their compile units through the executor and
// the cache, stores the artifacts and records each job's end. `kiln serve`
// runs one beside its HTTP API (service.h); `kiln worker` runs one alone.
//
// A stop is graceful: no job is claimed any more, running jobs get the grace
// period to finish (their leases renewed meanwhile), then their compiles are
// stopped and the jobs go back to the queue. A job is recorded succeeded
// only with every unit its request plans (the store checks it too).
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
#include "kiln/serve/store.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::serve {

namespace fs = std::filesystem;

struct WorkerOptions {
  fs::path data_dir;          // this host's: the jobs' local files
  double lease_seconds = 30;  // a worker that stops renewing loses its job after this
  int threads = 1;            // jobs compiled at once
  std::chrono::seconds job_timeout{1800};
  int max_attempts = 3;  // starts of one job across restarts before it is failed
  fs::path tuning_dir;   // the tuning database compiles use; empty: none
  // On stop, how long running compiles may go on before they are stopped
  // and their jobs queued again.
  std::chrono::milliseconds grace{30000};
};

// Compile figures since start, for the metrics.
struct CompileStats {
  std::vector<double> bounds = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
  std::vector<uint64_t> buckets = std::vector<uint64_t>(13, 0);  // one per bound, then +Inf
  double duration_sum = 0;
  uint64_t duration_count = 0, cache_hits = 0, cache_misses = 0, shared_hits = 0;
};

// The backends a worker and an API share: the job store and, for a fleet,
// the shared object store (null on one host).
struct Backends {
  std::shared_ptr<Store> store;
  std::shared_ptr<blob::Bucket> bucket;
};

class Worker {
 public:
  // Recovers the jobs a crash of this host's service left (the crash record
  // in DATA_DIR) and starts the worker threads and the lease thread.
  static Result<std::unique_ptr<Worker>> start(WorkerOptions options, toolchain::Toolchain tools,
                                               std::unique_ptr<compile::Executor> executor,
                                               std::optional<cache::Store> cache, Backends backends);
  ~Worker();

  void stop();
  // A job was queued: an idle worker thread looks at once.
  void wake() { wake_.notify_one(); }
  // A cancel request for a job that may be running here: stopped now.
  void cancel_here(const std::string& id);
  CompileStats stats() const;
  const std::string& id() const { return id_; }
  int recovered() const { return recovered_; }
  int threads() const { return options_.threads; }

 private:
  Worker(WorkerOptions options, toolchain::Toolchain tools, std::unique_ptr<compile::Executor> executor,
         std::optional<cache::Store> cache, Backends backends);

  // How a run of a job's units ended.
  struct Run {
    nlohmann::json units = nlohmann::json::array();
    size_t planned = 0;        // units the request plans
    bool interrupted = false;  // a unit was stopped before it ended (cancel, stop)
    std::optional<Error> first_error;
  };
  void worker_loop();
  void lease_loop();
  void run_job(JobRecord job);
  std::shared_ptr<std::atomic<bool>> start_running(const JobRecord& job);
  void finish_running(const JobRecord& job, bool cancel_requested, const Run& run);
  void give_back(const JobRecord& job, const std::string& why);
  void count_compile(const compile::Outcome& outcome);
  Status store_artifacts(const std::string& job_id, const compile::Outcome& outcome);
  // The job's upload as a local file (fetched from the shared store if needed).
  Result<fs::path> local_input(const JobRecord& job);
  // Records a job's end; retried while the queue cannot be reached.
  void record_end(const JobRecord& job, JobState state, const nlohmann::json& units,
                  const std::optional<Error>& error);

  WorkerOptions options_;
  toolchain::Toolchain tools_;
  std::unique_ptr<compile::Executor> executor_;
  std::optional<cache::Store> cache_;
  std::shared_ptr<Store> store_;
  std::shared_ptr<blob::Bucket> bucket_;  // a shared store, or null
  std::optional<cache::Shared> shared_cache_;
  std::string id_;  // host, pid and a random part: who holds a lease
  std::vector<std::thread> workers_;
  std::thread leases_;
  std::atomic<bool> stopping_{false};   // no more claims
  std::atomic<bool> hard_stop_{false};  // the grace period is over: running compiles stop
  std::atomic<bool> leases_done_{false};
  int active_ = 0;  // threads between a claim and the end of its job (under mu_)
  std::mutex mu_;
  std::condition_variable wake_;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> cancels_;  // running jobs
  std::map<std::string, bool> lost_;  // running jobs whose lease another worker took over
  int recovered_ = 0;

  mutable std::mutex stats_mu_;
  CompileStats stats_;
};

// Opens the job store (DATA_DIR/kiln.db, or the shared queue) and the
// shared object store, and checks that they fit together.
Result<Backends> open_backends(const fs::path& data_dir, const std::string& queue, const std::string& store);

// "host/pid/random": who holds a lease.
Result<std::string> new_worker_id();

}  // namespace kiln::serve
