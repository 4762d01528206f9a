#include "kiln/serve/service.h"

#include "kiln/util/json.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <string.h>
#include <unistd.h>

#include <ctime>
#include <iostream>

#include <fmt/format.h>

#include "kiln/compile/compile.h"
#include "kiln/job/job.h"
#include "kiln/mlir/inspect.h"
#include "kiln/serve/crash_record.h"
#include "kiln/serve/multipart.h"
#include "kiln/target/target.h"
#include "kiln/serve/openapi_text.h"
#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"
#include "kiln/util/time.h"

namespace kiln::serve {

Response json_response(int status, const nlohmann::json& body) { return {status, "application/json", body.dump(2) + "\n", {}, {}}; }

Response error_response(int status, const std::string& code, const std::string& message) {
  return json_response(status, {{"error", {{"code", code}, {"message", message}}}});
}

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Workers, the lease thread and the HTTP threads log at once: each line is
// formatted first and written whole, under a lock, so lines never interleave.
void log(const std::string& line) {
  static std::mutex mu;
  std::string text = "[" + util::utc_timestamp() + "] " + line + "\n";
  std::lock_guard<std::mutex> lock(mu);
  std::cerr << text << std::flush;
}

// The compile options of a job request (its "options" object, already
// checked against the job schema), checked as a remote client's.
Result<job::JobOptions> compile_options(const nlohmann::json& request, std::chrono::seconds job_timeout) {
  auto read = KILN_TRY(job::options_from_json(request.value("options", nlohmann::json::object()),
                                              compile::Origin::kRemoteClient));
  // A job's own limit can only lower the service's.
  double limit = std::min<double>(read.timeout_seconds.value_or(1e9), static_cast<double>(job_timeout.count()));
  read.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(limit * 1000));
  return read;
}

Result<std::string> new_id() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    return fail(Code::kUnavailable, "the system's random number generator failed; try again");
  }
  std::string id;
  for (unsigned char b : bytes) id += fmt::format("{:02x}", b);
  return id;
}

bool is_job_id(const std::string& s) {
  return s.size() == 32 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

}  // namespace

int http_status(Code code) {
  switch (code) {
    case Code::kInvalidArgument: return 400;
    case Code::kNotFound: return 404;
    case Code::kFailedPrecondition: return 409;
    case Code::kCompileFailed: return 422;
    case Code::kDeadlineExceeded: return 504;
    case Code::kResourceExhausted: return 429;
    case Code::kUnavailable: return 503;
    case Code::kCancelled: return 409;
    case Code::kInternal: return 500;
  }
  return 500;
}

Response error_response(const Error& e) { return error_response(http_status(e.code), code_name(e.code), e.message); }

Result<std::unique_ptr<Service>> Service::start(ServiceOptions options, toolchain::Toolchain tools,
                                                std::unique_ptr<compile::Executor> executor,
                                                std::optional<cache::Store> cache) {
  std::error_code ec;
  fs::create_directories(options.data_dir / "jobs", ec);
  if (ec) return fail(Code::kFailedPrecondition, "cannot create " + options.data_dir.string() + ": " + ec.message());
  auto store = KILN_TRY(Store::open(options.queue.empty() ? (options.data_dir / "kiln.db").string() : options.queue));
  std::unique_ptr<blob::Bucket> bucket;
  if (!options.store.empty()) {
    bucket = KILN_TRY(blob::open(options.store));
    KILN_TRY_STATUS(bucket->check());
  }
  if (store->shared() && !bucket) {
    return fail(Code::kInvalidArgument, fmt::format("{} is shared by a fleet, but uploads and artifacts would stay on "
                                                    "this host: give a shared store too (--store s3://BUCKET/PREFIX, "
                                                    "or KILN_STORE)", store->describe()));
  }
  if (options.workers == 0 && !store->shared()) {
    return fail(Code::kInvalidArgument, "--workers 0 leaves compiling to other hosts' workers, which needs a shared "
                                        "queue (--queue postgresql://...); with this host's queue give --workers 1 or more");
  }
  if (options.lease_seconds < 1) return fail(Code::kInvalidArgument, "the lease must be at least 1 second");
  std::unique_ptr<Service> s(new Service(std::move(options), std::move(tools), std::move(executor), std::move(cache),
                                         std::move(store), std::move(bucket)));
  auto id = KILN_TRY(new_id());
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  s->worker_id_ = fmt::format("{}/{}/{}", host, ::getpid(), id.substr(0, 8));
  // A crash of this service's own code while it compiled a job fails that
  // job with the reason; it is not run again to crash the service again.
  fs::path record = s->options_.data_dir / "crash.record";
  std::vector<std::string> crashed;
  std::string reason;
  if (auto crash = take_crash_record(record)) {
    crashed = crash->jobs;
    reason = fmt::format("kiln serve crashed ({}) while compiling this job; it is not run again. The crash is kiln's "
                         "own defect: please report it with this job's model", crash->signal ? ::strsignal(crash->signal)
                                                                                                  : "a fatal signal");
    log(fmt::format("the previous run crashed with {} job(s) in flight; they are marked failed", crashed.size()));
  }
  s->recovered_ = KILN_TRY(s->store_->recover(s->options_.max_attempts, crashed, reason));
  install_crash_record(record);
  for (int i = 0; i < s->options_.workers; ++i) s->workers_.emplace_back([p = s.get()] { p->worker_loop(); });
  s->leases_ = std::thread([p = s.get()] { p->lease_loop(); });
  return s;
}

Service::~Service() { stop(); }

void Service::stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, flag] : cancels_) flag->store(true);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (leases_.joinable()) leases_.join();
}

bool Service::authorized(const std::string& header) const {
  static constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size() || header.compare(0, kBearer.size(), kBearer) != 0) return false;
  std::string_view given = std::string_view(header).substr(kBearer.size());
  bool match = false;
  for (const auto& token : options_.tokens) {
    // Same length first (length is not secret), then a constant-time compare;
    // every token is compared so timing does not say which one matched.
    bool same = token.size() == given.size() && CRYPTO_memcmp(token.data(), given.data(), token.size()) == 0;
    match |= same;
  }
  return match;
}

Response Service::handle(const Request& r) {
  auto record = [&](Response resp) {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    ++responses_[resp.status];
    return resp;
  };
  if (r.path == "/healthz") return record(json_response(200, {{"status", "ok"}}));
  if (r.path == "/readyz") {
    bool ready = !stopping_ && (!workers_.empty() || store_->shared());
    return record(json_response(ready ? 200 : 503, {{"ready", ready}, {"draining", stopping_.load()},
                                                    {"workers", workers_.size()}, {"queue", store_->describe()},
                                                    {"executor", executor_->name()}, {"iree", tools_.release}}));
  }
  if (needs_token(r.path) && !authorized(r.authorization)) {
    Response resp = error_response(401, "unauthenticated", "missing or wrong bearer token (Authorization: Bearer <token>)");
    resp.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"kiln\"");
    return record(resp);
  }
  auto parts = util::split(r.path, '/');  // "", "v1", "jobs", id, ...
  auto method_not_allowed = [&] { return record(error_response(405, "method_not_allowed", r.method + " is not allowed on " + r.path)); };
  if (r.path == "/metrics") return record(r.method == "GET" ? metrics() : method_not_allowed());
  if (r.path == "/v1/openapi.json") {
    return record(r.method == "GET" ? Response{200, "application/json", kOpenApiText, {}, {}} : method_not_allowed());
  }
  if (r.path == "/v1/targets") return record(r.method == "GET" ? targets() : method_not_allowed());
  if (r.path == "/v1/jobs") {
    if (r.method == "POST") return record(submit(r));
    if (r.method != "GET") return method_not_allowed();
    auto recent = store_->recent(100);
    if (!recent) return record(error_response(recent.error()));
    nlohmann::json list = nlohmann::json::array();
    for (const auto& j : *recent) list.push_back(job_json(j));
    return record(json_response(200, {{"jobs", list}}));
  }
  if (parts.size() >= 4 && parts[1] == "v1" && parts[2] == "jobs") {
    const std::string& id = parts[3];
    if (!is_job_id(id)) return record(error_response(404, "not_found", "no job " + id));
    if (parts.size() == 4) return record(r.method == "GET" ? job_status(id) : method_not_allowed());
    if (parts.size() == 5 && parts[4] == "cancel") return record(r.method == "POST" ? cancel(id) : method_not_allowed());
    if (parts.size() == 6 && parts[4] == "artifacts") return record(r.method == "GET" ? artifact(id, parts[5]) : method_not_allowed());
  }
  return record(error_response(404, "not_found", "no such endpoint: " + r.method + " " + r.path + " (GET /v1/openapi.json lists them)"));
}

Response Service::queue_full(int64_t queued) {
  // A rough wait: the queue ahead, spread over the workers, at the mean
  // unit time seen so far (at least a second).
  double mean;
  {
    std::lock_guard<std::mutex> lock(metrics_mu_);
    mean = duration_count_ ? duration_sum_ / duration_count_ : 5;
  }
  int wait = std::max(1, static_cast<int>(queued * mean / std::max(1, options_.workers)));
  Response resp = error_response(429, "resource_exhausted",
                                 fmt::format("the queue is full ({} jobs waiting); retry later", queued));
  resp.headers.emplace_back("Retry-After", std::to_string(wait));
  return resp;
}

Response Service::submit(const Request& r) {
  // Checked first so a full queue costs no upload handling; checked again,
  // exactly, when the job is stored.
  auto waiting = store_->queued();
  if (!waiting) return error_response(waiting.error());
  if (*waiting >= options_.max_queue) return queue_full(*waiting);
  auto boundary = boundary_of(r.content_type);
  if (!boundary) return error_response(boundary.error());
  auto form = parse_multipart(r.body, *boundary);
  if (!form) return error_response(form.error());
  auto model = form->find("model");
  if (model == form->end() || model->second.body.empty()) {
    return error_response(400, "invalid_argument", "no 'model' file in the form (curl -F model=@model.mlir ...)");
  }
  nlohmann::json options = {{"targets", {"cpu"}}};
  if (auto o = form->find("options"); o != form->end()) {
    auto parsed = util::parse_json(o->second.body, "the 'options' field");
    if (!parsed && util::json_depth(o->second.body) > util::kMaxJsonDepth) return error_response(parsed.error());
    options = parsed ? *parsed : nlohmann::json();
    if (!parsed || !options.is_object()) {
      return error_response(400, "invalid_argument", "the 'options' field is not a JSON object: " +
                                                         o->second.body.substr(0, 200));
    }
  }
  if (options.contains("inputs") || options.contains("output_dir")) {
    return error_response(400, "invalid_argument", "options name no inputs or output_dir: the service stores the "
                                                   "upload and the artifacts itself");
  }
  // The same schema as job files, with the upload as the one input.
  nlohmann::json doc = options;
  doc["version"] = options.value("version", 1);
  doc["inputs"] = {"model"};
  auto violations = job::validate_schema(doc);
  if (!violations.empty()) {
    std::vector<std::string> lines;
    for (const auto& v : violations) lines.push_back("at " + v.pointer + ": " + v.message);
    return error_response(400, "invalid_argument", "the options do not match the job schema: " + util::join(lines, "; "));
  }
  for (size_t i = 0; i < doc["targets"].size(); ++i) {
    auto t = target::resolve(doc["targets"][i].get<std::string>());
    if (!t) return error_response(400, "invalid_argument", fmt::format("at /targets/{}: {}", i, t.error().message));
  }
  if (auto checked = compile_options(options, options_.job_timeout); !checked) return error_response(checked.error());
  auto fresh_id = new_id();
  if (!fresh_id) return error_response(fresh_id.error());
  std::string id = *fresh_id;
  fs::path dir = options_.data_dir / "jobs" / id;
  std::error_code ec;
  fs::create_directories(dir, ec);
  // The upload's name is never used: the file is named by what it is.
  fs::path input = dir / (mlir::detect_format(model->second.body) == mlir::Format::kBytecode ? "model.mlirbc" : "model.mlir");
  if (auto st = util::write_file_atomic(input, model->second.body); !st) return error_response(st.error());
  auto inspected = mlir::inspect_file(input, [&](const fs::path& p) { return toolchain::print_as_text(tools_, p); });
  if (!inspected) {
    fs::remove_all(dir, ec);
    std::string message = inspected.error().message;
    if (size_t at = message.find(input.string()); at != std::string::npos) message.replace(at, input.string().size(), "model");
    return error_response(400, "invalid_argument", "the model is not readable StableHLO: " + message);
  }
  JobRecord job{id, JobState::kQueued, now(), 0, 0, options, input.string(), nullptr, "", "", 0};
  if (bucket_) {
    // Workers on other hosts read the upload from the shared store.
    job.input_path = "uploads/" + id + "/" + input.filename().string();
    if (auto st = bucket_->put(job.input_path, model->second.body); !st) {
      fs::remove_all(dir, ec);
      return error_response(st.error());
    }
  }
  if (auto st = store_->insert(job, options_.max_queue); !st) {
    fs::remove_all(dir, ec);
    if (bucket_) (void)bucket_->remove(job.input_path);
    if (st.error().code == Code::kResourceExhausted) return queue_full(std::atoll(st.error().message.c_str()));
    return error_response(st.error());
  }
  wake_.notify_one();
  log("accepted job " + id);
  Response resp = json_response(202, job_json(job));
  resp.headers.emplace_back("Location", "/v1/jobs/" + id);
  return resp;
}

nlohmann::json Service::job_json(const JobRecord& j) const {
  auto time_or_null = [](double t) { return t > 0 ? nlohmann::json(t) : nlohmann::json(nullptr); };
  nlohmann::json out = {{"id", j.id}, {"state", state_name(j.state)}, {"created_at", j.created_at},
                        {"started_at", time_or_null(j.started_at)}, {"finished_at", time_or_null(j.finished_at)},
                        {"targets", j.request.value("targets", nlohmann::json::array())},
                        {"options", j.request.value("options", nlohmann::json::object())},
                        {"attempts", j.attempts}, {"links", {{"self", "/v1/jobs/" + j.id}}}};
  if (j.started_at > 0 && j.finished_at > 0) out["run_seconds"] = j.finished_at - j.started_at;
  if (j.started_at > 0) out["queued_seconds"] = j.started_at - j.created_at;
  if (!j.result.is_null() && !j.result.is_discarded()) out["units"] = j.result;
  if (!j.error_code.empty()) out["error"] = {{"code", j.error_code}, {"message", j.error_message}};
  return out;
}

Response Service::job_status(const std::string& id) {
  auto j = store_->get(id);
  if (!j) return error_response(j.error());
  if (!*j) return error_response(404, "not_found", "no job " + id);
  return json_response(200, job_json(**j));
}

Response Service::cancel(const std::string& id) {
  auto asked = store_->cancel(id);
  if (!asked) return error_response(asked.error());
  auto& state = *asked;
  if (!state) return error_response(404, "not_found", "no job " + id);
  // Running here: stopped now; running elsewhere: its worker sees the
  // request when it next renews its lease.
  if (*state == JobState::kRunning) {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cancels_.find(id); it != cancels_.end()) it->second->store(true);
  }
  log("cancel requested for job " + id + " (" + state_name(*state) + ")");
  return job_status(id);
}

Response Service::artifact(const std::string& id, const std::string& file) {
  auto found = store_->get(id);
  if (!found) return error_response(found.error());
  if (!*found) return error_response(404, "not_found", "no job " + id);
  const JobRecord& j = **found;
  // Only names the job recorded are served: a request never becomes a path.
  if (j.result.is_array()) {
    for (const auto& unit : j.result) {
      for (const char* key : {"module", "metadata"}) {
        if (!unit.contains(key) || unit[key] != file) continue;
        fs::path local = options_.data_dir / "jobs" / id / "out" / file;
        std::error_code ec;
        if (bucket_ && !fs::exists(local, ec)) {
          // Compiled on another host: fetched from the shared store (its
          // checksum checked), then served from this host's copy.
          auto got = bucket_->get_file("jobs/" + id + "/" + file, local);
          if (!got) return error_response(got.error());
          if (!*got) return error_response(404, "not_found", fmt::format("job {}'s artifact {} is missing from {}", id, file,
                                                                        bucket_->describe()));
          if (std::string(key) == "module" && util::sha256_file(local).value_or("") != unit.value("sha256", "")) {
            fs::remove(local, ec);
            return error_response(500, "internal", fmt::format("job {}'s module in {} is not the one compiled", id,
                                                              bucket_->describe()));
          }
        }
        Response resp{200, std::string(key) == "module" ? "application/octet-stream" : "application/json", "", {}, {}};
        resp.file = local;
        resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file + "\"");
        return resp;
      }
    }
  }
  return error_response(404, "not_found", fmt::format("job {} has no artifact {} (state {})", id, file, state_name(j.state)));
}

Response Service::targets() {
  nlohmann::json families = nlohmann::json::array();
  for (const auto& f : target::supported_targets()) {
    families.push_back({{"syntax", f.syntax}, {"backend", f.backend}, {"choices", f.choices}, {"note", f.note}});
  }
  return json_response(200, {{"iree_release", tools_.release}, {"families", families}});
}

Response Service::metrics() {
  std::string m;
  auto counted = store_->counts();
  if (!counted) return error_response(counted.error());
  auto& counts = *counted;
  m += "# HELP kiln_jobs Jobs in the database, by state.\n# TYPE kiln_jobs gauge\n";
  for (const auto& [state, n] : counts) m += fmt::format("kiln_jobs{{state=\"{}\"}} {}\n", state, n);
  m += "# HELP kiln_queue_depth Jobs waiting for a worker.\n# TYPE kiln_queue_depth gauge\n";
  m += fmt::format("kiln_queue_depth {}\n", counts[state_name(JobState::kQueued)]);
  std::lock_guard<std::mutex> lock(metrics_mu_);
  m += "# HELP kiln_compile_duration_seconds Wall time of compile units since the service started.\n"
       "# TYPE kiln_compile_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bucket_bounds_.size(); ++i) {
    cumulative += buckets_[i];
    m += fmt::format("kiln_compile_duration_seconds_bucket{{le=\"{}\"}} {}\n", bucket_bounds_[i], cumulative);
  }
  cumulative += buckets_.back();
  m += fmt::format("kiln_compile_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  m += fmt::format("kiln_compile_duration_seconds_sum {}\nkiln_compile_duration_seconds_count {}\n", duration_sum_,
                   duration_count_);
  m += "# HELP kiln_cache_hits_total Compile units served from the artifact cache.\n# TYPE kiln_cache_hits_total counter\n";
  m += fmt::format("kiln_cache_hits_total {}\n", cache_hits_);
  m += "# HELP kiln_cache_misses_total Compile units that had to compile.\n# TYPE kiln_cache_misses_total counter\n";
  m += fmt::format("kiln_cache_misses_total {}\n", cache_misses_);
  m += "# HELP kiln_cache_shared_hits_total Compile units served from the fleet's shared cache.\n"
       "# TYPE kiln_cache_shared_hits_total counter\n";
  m += fmt::format("kiln_cache_shared_hits_total {}\n", shared_hits_);
  m += "# HELP kiln_http_responses_total HTTP responses by status.\n# TYPE kiln_http_responses_total counter\n";
  for (const auto& [status, n] : responses_) m += fmt::format("kiln_http_responses_total{{code=\"{}\"}} {}\n", status, n);
  return {200, "text/plain; version=0.0.4", m, {}, {}};
}

void Service::worker_loop() {
  prepare_thread_for_crash_record();
  bool reported = false;  // an outage of the queue is logged once, not every poll
  while (!stopping_) {
    auto claimed = store_->claim_next(worker_id_, options_.lease_seconds);
    if (!claimed) {
      if (!reported) log("cannot take jobs: " + claimed.error().message + "; trying again every second");
      reported = true;
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::seconds(1));
      continue;
    }
    if (reported) log("the queue answers again");
    reported = false;
    if (!*claimed) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(store_->shared() ? 500 : 250));
      continue;
    }
    JobRecord job = std::move(**claimed);
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
void Service::lease_loop() {
  auto period = std::chrono::milliseconds(static_cast<int64_t>(options_.lease_seconds * 1000 / 3));
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, period, [&] { return stopping_.load(); });
    }
    if (stopping_) break;
    std::map<std::string, std::shared_ptr<std::atomic<bool>>> running;
    {
      std::lock_guard<std::mutex> lock(mu_);
      running = cancels_;
    }
    for (const auto& [id, cancel] : running) {
      auto lease = store_->renew(id, worker_id_, options_.lease_seconds);
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

Result<fs::path> Service::local_input(const JobRecord& job) {
  if (!bucket_) return fs::path(job.input_path);
  fs::path local = options_.data_dir / "jobs" / job.id / fs::path(job.input_path).filename();
  std::error_code ec;
  if (fs::exists(local, ec)) return local;
  auto got = KILN_TRY(bucket_->get_file(job.input_path, local));
  if (!got) return fail(Code::kNotFound, fmt::format("the job's upload {} is missing from {}", job.input_path, bucket_->describe()));
  return local;
}

void Service::record_end(const JobRecord& job, JobState state, const nlohmann::json& units,
                         const std::optional<Error>& error) {
  // While the queue cannot be reached the end is tried again for one lease;
  // after that the job is left to expire and run again elsewhere (a cache
  // hit by then).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(options_.lease_seconds * 1000));
  for (int attempt = 0;; ++attempt) {
    auto done = store_->finish(job.id, worker_id_, state, units, error ? code_name(error->code) : "",
                               error ? error->message : "");
    if (done && !*done) {
      log("job " + job.id + " ended here after another worker took it over; this result is dropped");
      return;
    }
    if (done) {
      log("job " + job.id + " " + state_name(state));
      return;
    }
    if (std::chrono::steady_clock::now() > deadline || stopping_) {
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

nlohmann::json unit_json(const std::string& job_id, const std::string& spec, const compile::Outcome& outcome,
                         const std::string& worker_id) {
  const auto& m = outcome.record;
  std::string module_file = outcome.module_path.filename().string();
  std::string metadata_file = outcome.metadata_path.filename().string();
  nlohmann::json unit = {{"target", spec}, {"ok", true}, {"module", module_file}, {"metadata", metadata_file},
                         {"sha256", m.output_sha256}, {"size_bytes", m.output_size_bytes},
                         {"cache_hit", outcome.cache_hit}, {"compile_seconds", m.compile_wall_seconds}, {"worker", worker_id},
                         {"links", {{"module", fmt::format("/v1/jobs/{}/artifacts/{}", job_id, module_file)},
                                    {"metadata", fmt::format("/v1/jobs/{}/artifacts/{}", job_id, metadata_file)}}}};
  if (outcome.cache_hit) unit["cache_source"] = outcome.cache_source;
  return unit;
}

}  // namespace

void Service::count_compile(const compile::Outcome& outcome) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  if (outcome.cache_hit) {
    ++cache_hits_;
    if (outcome.cache_source == "shared") ++shared_hits_;
    return;
  }
  double seconds = outcome.record.compile_wall_seconds;
  ++cache_misses_;
  size_t b = 0;
  while (b < bucket_bounds_.size() && seconds > bucket_bounds_[b]) ++b;
  ++buckets_[b];
  duration_sum_ += seconds;
  ++duration_count_;
}

// Stored for the fleet before the job row says so.
Status Service::store_artifacts(const std::string& job_id, const compile::Outcome& outcome) {
  if (!bucket_) return {};
  for (const auto& file : {outcome.module_path, outcome.metadata_path}) {
    if (auto st = bucket_->put_file("jobs/" + job_id + "/" + file.filename().string(), file); !st) {
      return tl::unexpected(st.error().context("storing the artifacts"));
    }
  }
  return {};
}

// Registers a running job's cancel flag; a cancel that arrived between claim
// and here is honoured.
std::shared_ptr<std::atomic<bool>> Service::start_running(const JobRecord& job) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_[job.id] = cancel;
    lost_.erase(job.id);
  }
  if (auto lease = store_->renew(job.id, worker_id_, options_.lease_seconds); lease && lease->cancel_requested) {
    cancel->store(true);
  }
  return cancel;
}

// Ends a job this worker ran: given back to the queue on a graceful stop,
// recorded otherwise, unless another worker took it over.
void Service::finish_running(const JobRecord& job, bool cancelled, const nlohmann::json& units,
                             const std::optional<Error>& first_error) {
  bool lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.erase(job.id);
    lost = lost_.erase(job.id) > 0;
  }
  if (lost) return;  // another worker holds it now
  if (stopping_ && cancelled) {
    // A graceful stop: the job goes back to the queue, for any worker.
    if (auto st = store_->release(job.id, worker_id_); !st) log("cannot give job " + job.id + " back: " + st.error().message);
    else log("job " + job.id + " interrupted by shutdown; queued again");
    return;
  }
  JobState state = cancelled ? JobState::kCancelled : first_error ? JobState::kFailed : JobState::kSucceeded;
  record_end(job, state, units, first_error);
}

void Service::run_job(JobRecord job) {
  auto cancel = start_running(job);
  log(fmt::format("running job {} (attempt {})", job.id, job.attempts));
  CrashSlot in_flight(job.id);
  fs::path out = options_.data_dir / "jobs" / job.id / "out";
  std::error_code ec;
  fs::create_directories(out, ec);
  // Checked at submission too; again here for jobs stored before that check.
  auto checked = compile_options(job.request, options_.job_timeout);
  compile::Options options = checked ? checked->options : compile::Options{};
  // One unit per target, or per target and binding.
  std::vector<mlir::Binding> bindings = checked ? checked->bindings : std::vector<mlir::Binding>{};
  if (bindings.empty()) bindings.emplace_back();

  nlohmann::json units = nlohmann::json::array();
  std::optional<Error> first_error;
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
  for (const auto& [spec, binding] : planned) {
    if (cancel->load() || !checked || !input) break;
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
    nlohmann::json unit;
    if (outcome) {
      count_compile(*outcome);
      unit = unit_json(job.id, spec, *outcome, worker_id_);
    } else {
      if (outcome.error().code == Code::kCancelled) break;
      std::string message = client_message(outcome.error().message, input_path, out);
      unit = {{"target", spec}, {"ok", false}, {"error", {{"code", code_name(outcome.error().code)}, {"message", message}}}};
      if (!first_error) first_error = Error{outcome.error().code, message};
    }
    if (!binding->empty()) unit["binding"] = binding_json(*binding);
    units.push_back(std::move(unit));
  }
  finish_running(job, cancel->load(), units, first_error);
}

}  // namespace kiln::serve
