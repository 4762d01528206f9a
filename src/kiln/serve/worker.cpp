#include "kiln/serve/worker.h"

#include <openssl/rand.h>

#include <string.h>
#include <unistd.h>

#include <fmt/format.h>

#include "kiln/mlir/inspect.h"
#include "kiln/serve/crash_record.h"
#include "kiln/serve/job_request.h"
#include "kiln/serve/layout.h"
#include "kiln/serve/log.h"
#include "kiln/target/target.h"
#include "kiln/tuning/database.h"
#include "kiln/util/orphans.h"
#include "kiln/util/utf8.h"

namespace kiln::serve {

Result<std::string> new_worker_id() {
  unsigned char bytes[4];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return fail(Code::kUnavailable, "the system's random number generator failed; try again");
  }
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{}/{}/{:02x}{:02x}{:02x}{:02x}", host, ::getpid(), bytes[0], bytes[1], bytes[2], bytes[3]);
}

Result<Backends> open_backends(const fs::path& data_dir, const std::string& queue, const std::string& store_at) {
  std::error_code ec;
  fs::create_directories(layout::jobs_root(data_dir), ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + data_dir.string() + ": " + ec.message());
  Backends b;
  b.store = KILN_TRY(Store::open(queue.empty() ? (data_dir / "kiln.db").string() : queue));
  if (!store_at.empty()) {
    b.bucket = KILN_TRY(blob::open(store_at));
    KILN_TRY_STATUS(b.bucket->check());
  }
  if (b.store->shared() && !b.bucket) {
    return fail(Code::kInvalidArgument, fmt::format("{} is shared by a fleet, but uploads and artifacts would stay on "
                                                    "this host: give a shared store too (--store s3://BUCKET/PREFIX, "
                                                    "or KILN_STORE)", b.store->describe()));
  }
  return b;
}

namespace {

// What a killed run on this host left in the job folders: staging folders
// of compiles whose process is gone, and earlier outputs moved aside.
void clean_job_folders(const fs::path& data_dir) {
  std::error_code ec;
  for (const auto& job : fs::directory_iterator(layout::jobs_root(data_dir), ec)) {
    std::error_code entry_ec;
    if (!job.is_directory(entry_ec)) continue;
    for (const auto& entry : fs::directory_iterator(job.path(), entry_ec)) {
      std::string name = entry.path().filename().string();
      if (name.find(".stale-") != std::string::npos) fs::remove_all(entry.path(), entry_ec);
    }
    fs::path out = layout::job_out(data_dir, job.path().filename().string());
    if (fs::exists(out, entry_ec)) util::reap_orphans(out, ".kiln-staging-");
  }
}

}  // namespace

Worker::Worker(WorkerOptions options, toolchain::Toolchain tools, std::unique_ptr<compile::Executor> executor,
               std::optional<cache::Store> cache, Backends backends)
    : options_(std::move(options)), tools_(std::move(tools)), executor_(std::move(executor)), cache_(std::move(cache)),
      store_(std::move(backends.store)), bucket_(std::move(backends.bucket)) {
  if (bucket_) shared_cache_.emplace(*bucket_);
}

Result<std::unique_ptr<Worker>> Worker::start(WorkerOptions options, toolchain::Toolchain tools,
                                              std::unique_ptr<compile::Executor> executor,
                                              std::optional<cache::Store> cache, Backends backends) {
  if (options.lease_seconds < 1) return fail(Code::kInvalidArgument, "the lease must be at least 1 second");
  std::unique_ptr<Worker> w(new Worker(std::move(options), std::move(tools), std::move(executor), std::move(cache),
                                       std::move(backends)));
  w->id_ = KILN_TRY(new_worker_id());
  // A crash of this process's own code while it compiled a job fails that
  // job with the reason; it is not run again to crash the service again.
  fs::path record = w->options_.data_dir / "crash.record";
  std::vector<std::string> crashed;
  std::string reason;
  if (auto crash = take_crash_record(record)) {
    crashed = crash->jobs;
    reason = fmt::format("kiln serve crashed ({}) while compiling this job; it is not run again. The crash is kiln's "
                         "own defect: please report it with this job's model", crash->signal ? ::strsignal(crash->signal)
                                                                                                  : "a fatal signal");
    log(fmt::format("the previous run crashed with {} job(s) in flight; they are marked failed", crashed.size()));
  }
  w->recovered_ = KILN_TRY(w->store_->recover(w->options_.max_attempts, crashed, reason));
  clean_job_folders(w->options_.data_dir);
  install_crash_record(record);
  for (int i = 0; i < w->options_.threads; ++i) w->workers_.emplace_back([p = w.get()] { p->worker_loop(); });
  w->leases_ = std::thread([p = w.get()] { p->lease_loop(); });
  return w;
}

Worker::~Worker() { stop(); }

void Worker::stop() {
  if (stopping_.exchange(true)) return;
  wake_.notify_all();
  {
    // Running jobs may finish within the grace period; the lease thread
    // keeps renewing their leases meanwhile.
    std::unique_lock<std::mutex> lock(mu_);
    if (active_ > 0) log(fmt::format("stopping: {} running job(s) get {} s to finish", active_,
                                     options_.grace.count() / 1000.0));
    if (!wake_.wait_for(lock, options_.grace, [&] { return active_ == 0; })) {
      hard_stop_ = true;
      for (auto& [id, flag] : cancels_) flag->store(true);
    }
  }
  for (auto& t : workers_) t.join();
  workers_.clear();
  leases_done_ = true;
  wake_.notify_all();
  if (leases_.joinable()) leases_.join();
}

void Worker::cancel_here(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = cancels_.find(id); it != cancels_.end()) it->second->store(true);
}

CompileStats Worker::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

void Worker::worker_loop() {
  prepare_thread_for_crash_record();
  bool reported = false;  // an outage of the queue is logged once, not every poll
  // Counted from before the claim to the job's end, so that stop() waits
  // for a job claimed while it began.
  struct Active {
    Worker* s;
    explicit Active(Worker* s) : s(s) { ++s->active_; }
    ~Active() {
      std::lock_guard<std::mutex> lock(s->mu_);
      --s->active_;
      s->wake_.notify_all();
    }
  };
  while (true) {
    std::optional<Active> active;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) break;
      active.emplace(this);
    }
    auto claimed = store_->claim_next(id_, options_.lease_seconds);
    if (!claimed) {
      if (!reported) log("cannot take jobs: " + claimed.error().message + "; trying again every second");
      reported = true;
      active.reset();
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    if (reported) log("the queue answers again");
    reported = false;
    if (!*claimed) {
      active.reset();
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(store_->shared() ? 500 : 250));
      continue;
    }
    JobRecord job = std::move(**claimed);
    if (stopping_) {  // claimed while the stop began
      give_back(job, "claimed as the service stopped");
      continue;
    }
    // Caught at the thread's entry: an exception fails this job, never the
    // service and the jobs of the other workers.
    std::string what;
    try {
      run_job(job);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception of unknown type";
    }
    if (!what.empty()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        cancels_.erase(job.id);
        lost_.erase(job.id);
      }
      log("job " + job.id + " failed with an internal error: " + what);
      record_end(job, JobState::kFailed, nlohmann::json::array(),
                 Error{Code::kInternal, "internal error while running the job: " + what + "; please report it"});
    }
  }
}

// Renews the leases of the jobs this process runs, passes cancel requests
// made on any host to the compiles here, and queues again the jobs of
// workers that stopped renewing theirs.
void Worker::lease_loop() {
  auto period = std::chrono::milliseconds(static_cast<int64_t>(options_.lease_seconds * 1000 / 3));
  while (!leases_done_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, period, [&] { return leases_done_.load(); });
    }
    if (leases_done_) break;
    std::map<std::string, std::shared_ptr<std::atomic<bool>>> running;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running = cancels_;
    }
    for (const auto& [id, cancel] : running) {
      auto lease = store_->renew(id, id_, options_.lease_seconds);
      if (!lease) {
        log("cannot renew the lease of job " + id + ": " + lease.error().message);
        continue;
      }
      if (lease->cancel_requested) cancel->store(true);
      if (!lease->held) {
        // Another worker took it over (this one missed renewals): stop, and
        // leave the job to the new holder.
        log("job " + id + " is no longer this worker's (its lease ran out); stopping its compile");
        std::lock_guard<std::mutex> lock(mu_);
        lost_[id] = true;
        cancel->store(true);
      }
    }
    if (auto requeued = store_->expire(options_.max_attempts); requeued && *requeued > 0) {
      log(fmt::format("{} job(s) whose worker stopped renewing its lease queued again", *requeued));
      wake_.notify_all();
    }
  }
}

Result<fs::path> Worker::local_input(const JobRecord& job) {
  if (!bucket_) return fs::path(job.input_path);
  fs::path local = layout::job_dir(options_.data_dir, job.id) / fs::path(job.input_path).filename();
  std::error_code ec;
  if (fs::exists(local, ec)) return local;
  auto got = KILN_TRY(bucket_->get_file(job.input_path, local));
  if (!got) return fail(Code::kNotFound, fmt::format("the job's upload {} is missing from {}", job.input_path, bucket_->describe()));
  return local;
}

void Worker::record_end(const JobRecord& job, JobState state, const nlohmann::json& units,
                         const std::optional<Error>& error) {
  // While the queue cannot be reached the end is tried again for one lease;
  // after that the job is left to expire and run again elsewhere (a cache
  // hit by then).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options_.lease_seconds * 1000));
  for (int attempt = 0;; ++attempt) {
    auto done = store_->finish(job.id, id_, state, units, error ? code_name(error->code) : "",
                               error ? error->message : "");
    if (done && !*done) {
      log("job " + job.id + " ended here after another worker took it over; this result is dropped");
      return;
    }
    if (!done && done.error().code == Code::kFailedPrecondition) {
      // The store refused the end (a result without all its units): the
      // job runs again rather than being lost.
      return give_back(job, done.error().message);
    }
    if (done) {
      log("job " + job.id + " " + state_name(state));
      return;
    }
    if (std::chrono::steady_clock::now() > deadline || hard_stop_) {
      log("cannot record the end of job " + job.id + ": " + done.error().message + "; it runs again once its lease ends");
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(2000, 200 * (attempt + 1))));
  }
}

namespace {

// Diagnostics name the stored upload; users know it as "model". The saved
// compile log is named by its place in the job folder, a path of this
// server: the client gets its file name.
std::string client_message(std::string message, const std::string& input_path, const fs::path& out) {
  for (size_t at; (at = message.find(input_path)) != std::string::npos;) message.replace(at, input_path.size(), "model");
  std::string out_prefix = out.string() + "/";
  for (size_t at; (at = message.find(out_prefix)) != std::string::npos;) message.replace(at, out_prefix.size(), "");
  return message;
}

nlohmann::json binding_json(const mlir::Binding& binding) {
  nlohmann::json out = nullptr;
  for (const auto& [name, value] : binding) out[name] = value;
  return out;
}

UnitResult finished_unit(const std::string& spec, const compile::Outcome& outcome, const std::string& worker_id) {
  UnitResult u;
  u.target = spec;
  u.ok = true;
  u.module = outcome.module_path.filename().string();
  u.metadata = outcome.metadata_path.filename().string();
  u.sha256 = outcome.record.output_sha256;
  u.size_bytes = outcome.record.output_size_bytes;
  u.cache_hit = outcome.cache_hit;
  if (outcome.cache_hit) u.cache_source = outcome.cache_source;
  u.compile_seconds = outcome.record.compile_wall_seconds;
  u.worker = worker_id;
  return u;
}

}  // namespace

void Worker::count_compile(const compile::Outcome& outcome) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  if (outcome.cache_hit) {
    ++stats_.cache_hits;
    if (outcome.cache_source == "shared") ++stats_.shared_hits;
    return;
  }
  double seconds = outcome.record.compile_wall_seconds;
  ++stats_.cache_misses;
  size_t b = 0;
  while (b < stats_.bounds.size() && seconds > stats_.bounds[b]) ++b;
  ++stats_.buckets[b];
  stats_.duration_sum += seconds;
  ++stats_.duration_count;
}

// Stored for the fleet before the job row says so.
Status Worker::store_artifacts(const std::string& job_id, const compile::Outcome& outcome) {
  if (!bucket_) return {};
  for (const auto& file : {outcome.module_path, outcome.metadata_path}) {
    if (auto st = bucket_->put_file(layout::artifact_key(job_id, file.filename().string()), file); !st) {
      return tl::unexpected(st.error().context("storing the artifacts"));
    }
  }
  return {};
}

// Registers a running job's cancel flag; a cancel that arrived between claim
// and here is honoured.
std::shared_ptr<std::atomic<bool>> Worker::start_running(const JobRecord& job) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_[job.id] = cancel;
    lost_.erase(job.id);
    if (hard_stop_) cancel->store(true);
  }
  if (auto lease = store_->renew(job.id, id_, options_.lease_seconds); lease && lease->cancel_requested) {
    cancel->store(true);
  }
  return cancel;
}

void Worker::give_back(const JobRecord& job, const std::string& why) {
  if (auto st = store_->release(job.id, id_); !st) log("cannot give job " + job.id + " back: " + st.error().message);
  else log("job " + job.id + " queued again (" + why + ")");
}

// Ends a job this worker ran, unless another worker took it over. Only a
// run with every planned unit ended is recorded as succeeded or failed; a
// run a stop interrupted goes back to the queue, one a client cancelled
// ends cancelled.
void Worker::finish_running(const JobRecord& job, bool cancel_requested, const Run& run) {
  bool lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.erase(job.id);
    lost = lost_.erase(job.id) > 0;
  }
  if (lost) return;  // another worker holds it now
  bool complete = !run.interrupted && run.units.size() == run.planned;
  if (complete || (run.first_error && !run.interrupted)) {
    return record_end(job, run.first_error ? JobState::kFailed : JobState::kSucceeded, run.units, run.first_error);
  }
  if (cancel_requested && !stopping_) return record_end(job, JobState::kCancelled, run.units, run.first_error);
  give_back(job, stopping_ ? "interrupted by shutdown" : "interrupted before all its units ended");
}

namespace {

// The job's output folder, empty: what an earlier run left (a killed
// service's, whose compiler may even still run in a container) is moved
// aside and removed, so this run never writes where a stale one may.
fs::path fresh_output(const fs::path& data_dir, const JobRecord& job) {
  fs::path out = layout::job_out(data_dir, job.id);
  std::error_code ec;
  if (fs::exists(out, ec)) {
    fs::path aside = out;
    aside += fmt::format(".stale-{}-{}", job.attempts, ::getpid());
    fs::rename(out, aside, ec);
    fs::remove_all(ec ? out : aside, ec);
  }
  fs::create_directories(out, ec);
  return out;
}

}  // namespace

void Worker::run_job(JobRecord job) {
  auto cancel = start_running(job);
  log(fmt::format("running job {} (attempt {})", job.id, job.attempts));
  CrashSlot in_flight(job.id);
  fs::path out = fresh_output(options_.data_dir, job);
  // Checked at submission too; again here for jobs stored before that check.
  auto checked = compile_options(job.request, options_.job_timeout);
  compile::Options options = checked ? checked->options : compile::Options{};
  // One unit per target, or per target and binding.
  std::vector<mlir::Binding> bindings = checked ? checked->bindings : std::vector<mlir::Binding>{};
  if (bindings.empty()) bindings.emplace_back();

  Run run;
  auto& units = run.units;
  auto& first_error = run.first_error;
  if (!checked) first_error = checked.error();
  auto input = local_input(job);
  if (!input && !first_error) first_error = input.error();
  std::string input_path = input ? input->string() : job.input_path;
  auto module = mlir::inspect_file(input_path, [&](const fs::path& p) { return toolchain::print_as_text(tools_, p); });
  compile::CacheUse cache_use{cache_ ? &*cache_ : nullptr, false, shared_cache_ ? &*shared_cache_ : nullptr,
                              store_.get()};
  std::optional<tuning::Database> tuning;
  if (!options_.tuning_dir.empty()) tuning.emplace(options_.tuning_dir);
  std::vector<std::pair<std::string, const mlir::Binding*>> planned;
  for (const auto& spec : job.request.value("targets", std::vector<std::string>{})) {
    for (const auto& binding : bindings) planned.emplace_back(spec, &binding);
  }
  run.planned = planned.size();
  for (const auto& [spec, binding] : planned) {
    if (!checked || !input) break;
    if (cancel->load()) {
      run.interrupted = true;
      break;
    }
    auto target = target::resolve(spec);
    Result<compile::Outcome> outcome = !target ? Result<compile::Outcome>(tl::unexpected(target.error()))
                                       : !module ? Result<compile::Outcome>(tl::unexpected(module.error()))
                                                 : compile::run({input_path, "model", *target, out, cancel.get(), "",
                                                                 *binding},
                                                                options, *module, tools_, *executor_, cache_use,
                                                                tuning ? &*tuning : nullptr);
    if (outcome) {
      if (auto st = store_artifacts(job.id, *outcome); !st) outcome = tl::unexpected(st.error());
    }
    UnitResult unit;
    if (outcome) {
      count_compile(*outcome);
      unit = finished_unit(spec, *outcome, id_);
    } else {
      if (outcome.error().code == Code::kCancelled) {
        run.interrupted = true;
        break;
      }
      std::string message = util::to_valid_utf8(client_message(outcome.error().message, input_path, out));
      unit.target = spec;
      unit.error_code = code_name(outcome.error().code);
      unit.error_message = message;
      if (!first_error) first_error = Error{outcome.error().code, message};
    }
    if (!binding->empty()) unit.binding = binding_json(*binding);
    units.push_back(unit_json(unit, job.id));
  }
  finish_running(job, cancel->load(), run);
}


}  // namespace kiln::serve
