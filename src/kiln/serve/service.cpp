#include "kiln/serve/service.h"

#include "kiln/util/json.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <string.h>

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

void log(const std::string& line) { std::cerr << "[" << util::utc_timestamp() << "] " << line << "\n"; }

// The compile options of a job request (its "options" object, already
// checked against the job schema), checked as a remote client's.
Result<compile::Options> compile_options(const nlohmann::json& request, std::chrono::seconds job_timeout) {
  auto read = KILN_TRY(job::options_from_json(request.value("options", nlohmann::json::object()),
                                              compile::Origin::kRemoteClient));
  // A job's own limit can only lower the service's.
  double limit = std::min<double>(read.timeout_seconds.value_or(1e9), static_cast<double>(job_timeout.count()));
  read.options.timeout = std::chrono::milliseconds(static_cast<int64_t>(limit * 1000));
  return read.options;
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
  auto store = KILN_TRY(Store::open(options.data_dir / "kiln.db"));
  std::unique_ptr<Service> s(new Service(std::move(options), std::move(tools), std::move(executor), std::move(cache),
                                         std::move(store)));
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
  for (int i = 0; i < std::max(1, s->options_.workers); ++i) s->workers_.emplace_back([p = s.get()] { p->worker_loop(); });
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
    bool ready = !stopping_ && !workers_.empty();
    return record(json_response(ready ? 200 : 503, {{"ready", ready}, {"workers", workers_.size()},
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
    nlohmann::json list = nlohmann::json::array();
    for (const auto& j : store_->recent(100)) list.push_back(job_json(j));
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
  if (int64_t queued = store_->queued(); queued >= options_.max_queue) return queue_full(queued);
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
  JobRecord job{id, "queued", now(), 0, 0, options, input.string(), nullptr, "", "", 0};
  if (auto st = store_->insert(job, options_.max_queue); !st) {
    fs::remove_all(dir, ec);
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
  nlohmann::json out = {{"id", j.id}, {"state", j.state}, {"created_at", j.created_at},
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
  if (!j) return error_response(404, "not_found", "no job " + id);
  return json_response(200, job_json(*j));
}

Response Service::cancel(const std::string& id) {
  auto state = store_->cancel(id);
  if (!state) return error_response(404, "not_found", "no job " + id);
  if (*state == "running") {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cancels_.find(id); it != cancels_.end()) it->second->store(true);
  }
  log("cancel requested for job " + id + " (" + *state + ")");
  return job_status(id);
}

Response Service::artifact(const std::string& id, const std::string& file) {
  auto j = store_->get(id);
  if (!j) return error_response(404, "not_found", "no job " + id);
  // Only names the job recorded are served: a request never becomes a path.
  if (j->result.is_array()) {
    for (const auto& unit : j->result) {
      for (const char* key : {"module", "metadata"}) {
        if (unit.contains(key) && unit[key] == file) {
          Response resp{200, std::string(key) == "module" ? "application/octet-stream" : "application/json", "", {}, {}};
          resp.file = options_.data_dir / "jobs" / id / "out" / file;
          resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file + "\"");
          return resp;
        }
      }
    }
  }
  return error_response(404, "not_found", fmt::format("job {} has no artifact {} (state {})", id, file, j->state));
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
  auto counts = store_->counts();
  m += "# HELP kiln_jobs Jobs in the database, by state.\n# TYPE kiln_jobs gauge\n";
  for (const auto& [state, n] : counts) m += fmt::format("kiln_jobs{{state=\"{}\"}} {}\n", state, n);
  m += "# HELP kiln_queue_depth Jobs waiting for a worker.\n# TYPE kiln_queue_depth gauge\n";
  m += fmt::format("kiln_queue_depth {}\n", counts["queued"]);
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
  m += "# HELP kiln_http_responses_total HTTP responses by status.\n# TYPE kiln_http_responses_total counter\n";
  for (const auto& [status, n] : responses_) m += fmt::format("kiln_http_responses_total{{code=\"{}\"}} {}\n", status, n);
  return {200, "text/plain; version=0.0.4", m, {}, {}};
}

void Service::worker_loop() {
  prepare_thread_for_crash_record();
  while (!stopping_) {
    auto job = store_->claim_next();
    if (!job) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, std::chrono::milliseconds(250));
      continue;
    }
    std::string id = job->id;
    // Caught at the thread's entry: an exception fails this job, never the
    // service and the jobs of the other workers.
    std::string what;
    try {
      run_job(std::move(*job));
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      what = "an exception of unknown type";
    }
    if (!what.empty()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        cancels_.erase(id);
      }
      log("job " + id + " failed with an internal error: " + what);
      (void)store_->finish(id, "failed", nlohmann::json::array(), code_name(Code::kInternal),
                           "internal error while running the job: " + what + "; please report it");
    }
  }
}

void Service::run_job(JobRecord job) {
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_[job.id] = cancel;
    // A cancel that arrived between claim and here.
    if (auto fresh = store_->get(job.id); fresh && fresh->state == "cancelled") cancel->store(true);
  }
  log(fmt::format("running job {} (attempt {})", job.id, job.attempts));
  CrashSlot in_flight(job.id);
  fs::path out = options_.data_dir / "jobs" / job.id / "out";
  std::error_code ec;
  fs::create_directories(out, ec);
  // Checked at submission too; again here for jobs stored before that check.
  auto checked = compile_options(job.request, options_.job_timeout);
  compile::Options options = checked ? *checked : compile::Options{};

  nlohmann::json units = nlohmann::json::array();
  std::optional<Error> first_error;
  if (!checked) first_error = checked.error();
  auto module = mlir::inspect_file(job.input_path, [&](const fs::path& p) { return toolchain::print_as_text(tools_, p); });
  compile::CacheUse cache_use{cache_ ? &*cache_ : nullptr, false};
  std::optional<tuning::Database> tuning;
  if (!options_.tuning_dir.empty()) tuning.emplace(options_.tuning_dir);
  for (const auto& spec : job.request.value("targets", std::vector<std::string>{})) {
    if (cancel->load() || !checked) break;
    auto target = target::resolve(spec);
    Result<compile::Outcome> outcome = !target ? Result<compile::Outcome>(tl::unexpected(target.error()))
                                       : !module ? Result<compile::Outcome>(tl::unexpected(module.error()))
                                                 : compile::run({job.input_path, "model", *target, out, cancel.get()},
                                                                options, *module, tools_, *executor_, cache_use,
                                                                tuning ? &*tuning : nullptr);
    if (outcome) {
      const auto& m = outcome->record;
      double seconds = m.compile_wall_seconds;
      {
        std::lock_guard<std::mutex> lock(metrics_mu_);
        if (outcome->cache_hit) {
          ++cache_hits_;
        } else {
          ++cache_misses_;
          size_t b = 0;
          while (b < bucket_bounds_.size() && seconds > bucket_bounds_[b]) ++b;
          ++buckets_[b];
          duration_sum_ += seconds;
          ++duration_count_;
        }
      }
      units.push_back({{"target", spec}, {"ok", true}, {"module", outcome->module_path.filename().string()},
                       {"metadata", outcome->metadata_path.filename().string()}, {"sha256", m.output_sha256},
                       {"size_bytes", m.output_size_bytes}, {"cache_hit", outcome->cache_hit},
                       {"compile_seconds", seconds},
                       {"links", {{"module", fmt::format("/v1/jobs/{}/artifacts/{}", job.id, outcome->module_path.filename().string())},
                                  {"metadata", fmt::format("/v1/jobs/{}/artifacts/{}", job.id, outcome->metadata_path.filename().string())}}}});
    } else {
      if (outcome.error().code == Code::kCancelled) break;
      // Diagnostics name the stored upload; users know it as "model".
      std::string message = outcome.error().message;
      for (size_t at; (at = message.find(job.input_path)) != std::string::npos;) message.replace(at, job.input_path.size(), "model");
      units.push_back({{"target", spec}, {"ok", false}, {"error", {{"code", code_name(outcome.error().code)}, {"message", message}}}});
      if (!first_error) first_error = Error{outcome.error().code, message};
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    cancels_.erase(job.id);
  }
  if (stopping_ && cancel->load()) {
    log("job " + job.id + " interrupted by shutdown; it runs again at the next start");
    return;  // stays "running"; recover() re-queues it
  }
  std::string state = cancel->load() ? "cancelled" : first_error ? "failed" : "succeeded";
  auto st = store_->finish(job.id, state, units, first_error ? code_name(first_error->code) : "",
                           first_error ? first_error->message : "");
  if (!st) log("cannot record job " + job.id + ": " + st.error().message);
  log("job " + job.id + " " + state);
}

}  // namespace kiln::serve
