#include "kiln/serve/service.h"

#include "kiln/util/json.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <fmt/format.h>

#include "kiln/job/job.h"
#include "kiln/mlir/inspect.h"
#include "kiln/serve/job_request.h"
#include "kiln/serve/layout.h"
#include "kiln/serve/log.h"
#include "kiln/serve/multipart.h"
#include "kiln/target/target.h"
#include "kiln/serve/openapi_text.h"
#include "kiln/util/file.h"
#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::serve {

// Bytes that are not UTF-8 (in a path, a user's options, a compiler's
// output) are shown as U+FFFD: a response is never a 500 for them.
Response json_response(int status, const nlohmann::json& body) {
  return {status, "application/json", body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", {}, {}};
}

// Error messages quote what a client sent; the body stays small whatever it was.
constexpr size_t kMaxErrorMessage = 2048;

Response error_response(int status, const std::string& code, const std::string& message) {
  std::string shown = message.size() <= kMaxErrorMessage
                          ? message
                          : fmt::format("{}... ({} more bytes)", message.substr(0, kMaxErrorMessage),
                                        message.size() - kMaxErrorMessage);
  return json_response(status, {{"error", {{"code", code}, {"message", shown}}}});
}

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
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
  auto backends = KILN_TRY(open_backends(options.data_dir, options.queue, options.store));
  if (options.workers == 0 && !backends.store->shared()) {
    return fail(Code::kInvalidArgument, "--workers 0 leaves compiling to other hosts' workers, which needs a shared "
                                        "queue (--queue postgresql://...); with this host's queue give --workers 1 or more");
  }
  if (options.lease_seconds < 1) return fail(Code::kInvalidArgument, "the lease must be at least 1 second");
  std::unique_ptr<Service> s(new Service(options, tools, executor->name(), backends));
  if (options.workers > 0) {
    WorkerOptions w{options.data_dir, options.lease_seconds, options.workers, options.job_timeout,
                    options.max_attempts, options.tuning_dir, options.grace};
    s->worker_ = KILN_TRY(Worker::start(std::move(w), std::move(tools), std::move(executor), std::move(cache), backends));
    s->recovered_ = s->worker_->recovered();
  } else {
    // Other hosts' running jobs are theirs until their leases run out.
    s->recovered_ = KILN_TRY(s->store_->recover(options.max_attempts));
  }
  return s;
}

Service::~Service() { stop(); }

void Service::stop() {
  if (stopping_.exchange(true)) return;
  if (worker_) worker_->stop();
}

bool Service::authorized(const std::string& header) const {
  // The scheme is case-insensitive (RFC 9110 section 11.1); the token is not.
  static constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size() || util::to_lower(header.substr(0, kBearer.size())) != kBearer) return false;
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
  // Every response is counted where it is sent (the HTTP front).
  auto record = [](Response resp) { return resp; };
  if (r.path == "/healthz") return record(json_response(200, {{"status", "ok"}}));
  if (r.path == "/readyz") {
    bool ready = !stopping_ && (worker_ || store_->shared());
    return record(json_response(ready ? 200 : 503, {{"ready", ready}, {"draining", stopping_.load()},
                                                    {"workers", worker_ ? worker_->threads() : 0},
                                                    {"queue", store_->describe()}, {"executor", executor_name_},
                                                    {"iree", tools_.release}}));
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

void Service::count_response(int status) {
  std::lock_guard<std::mutex> lock(metrics_mu_);
  ++responses_[status];
}

Response Service::queue_full(int64_t queued) {
  // A rough wait: the queue ahead, spread over the workers, at the mean
  // unit time seen so far (at least a second).
  double mean = 5;
  if (worker_) {
    auto stats = worker_->stats();
    if (stats.duration_count) mean = stats.duration_sum / stats.duration_count;
  }
  int wait = std::max(1, static_cast<int>(queued * mean / std::max(1, options_.workers)));
  Response resp = error_response(429, "resource_exhausted",
                                 fmt::format("the queue is full ({} jobs waiting); retry later", queued));
  resp.headers.emplace_back("Retry-After", std::to_string(wait));
  return resp;
}

namespace {

// A submission's "options" field (absent: {"targets": ["cpu"]}), checked:
// kiln's own limits first, then the job-file schema, the targets and the
// compile options as a remote client's.
Result<nlohmann::json> submitted_options(const std::string* text, std::chrono::seconds job_timeout) {
  nlohmann::json options = {{"targets", {"cpu"}}};
  if (text) {
    auto parsed = util::parse_json(*text, "the 'options' field");
    if (!parsed && util::json_depth(*text) > util::kMaxJsonDepth) return tl::unexpected(parsed.error());
    if (!parsed || !parsed->is_object()) {
      return fail(Code::kInvalidArgument, "the 'options' field is not a JSON object: " + text->substr(0, 200));
    }
    options = std::move(*parsed);
  }
  if (auto limits = check_request_limits(options); !limits) {
    return fail(Code::kInvalidArgument, "the options are refused: " + limits.error().message);
  }
  if (options.contains("inputs") || options.contains("output_dir")) {
    return fail(Code::kInvalidArgument, "options name no inputs or output_dir: the service stores the upload and the "
                                        "artifacts itself");
  }
  // The same schema as job files, with the upload as the one input.
  nlohmann::json doc = options;
  doc["version"] = options.value("version", 1);
  doc["inputs"] = {"model"};
  auto violations = job::validate_schema(doc);
  if (!violations.empty()) {
    std::vector<std::string> lines;
    for (const auto& v : violations) lines.push_back("at " + v.pointer + ": " + v.message);
    return fail(Code::kInvalidArgument, "the options do not match the job schema: " + util::join(lines, "; "));
  }
  for (size_t i = 0; i < doc["targets"].size(); ++i) {
    auto t = target::resolve(doc["targets"][i].get<std::string>());
    if (!t) return fail(Code::kInvalidArgument, fmt::format("at /targets/{}: {}", i, t.error().message));
  }
  KILN_TRY(compile_options(options, job_timeout));
  return options;
}

}  // namespace

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
  auto read = submitted_options(form->find("options") != form->end() ? &form->at("options").body : nullptr,
                                options_.job_timeout);
  if (!read) return error_response(read.error());
  nlohmann::json options = std::move(*read);
  auto fresh_id = new_id();
  if (!fresh_id) return error_response(fresh_id.error());
  std::string id = *fresh_id;
  fs::path dir = layout::job_dir(options_.data_dir, id);
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
    job.input_path = layout::upload_key(id, input.filename().string());
    if (auto st = bucket_->put(job.input_path, model->second.body); !st) {
      fs::remove_all(dir, ec);
      return error_response(st.error());
    }
  }
  if (auto st = store_->insert(job, options_.max_queue); !st) {
    fs::remove_all(dir, ec);
    if (bucket_) (void)bucket_->remove(job.input_path);
    if (st.error().code == Code::kResourceExhausted) return queue_full(store_->queued().value_or(options_.max_queue));
    return error_response(st.error());
  }
  if (worker_) worker_->wake();
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
  if (*state == JobState::kRunning && worker_) worker_->cancel_here(id);
  log("cancel requested for job " + id + " (" + state_name(*state) + ")");
  return job_status(id);
}

Response Service::artifact(const std::string& id, const std::string& file) {
  auto found = store_->get(id);
  if (!found) return error_response(found.error());
  if (!*found) return error_response(404, "not_found", "no job " + id);
  const JobRecord& j = **found;
  // Only names the job recorded are served: a request never becomes a path.
  auto units = read_units(j.result);
  for (const auto& unit : units ? *units : std::vector<UnitResult>{}) {
    if (!unit.ok || (unit.module != file && unit.metadata != file)) continue;
    bool module = unit.module == file;
    fs::path local = layout::job_out(options_.data_dir, id) / file;
    std::error_code ec;
    if (bucket_ && !fs::exists(local, ec)) {
      // Compiled on another host: fetched from the shared store (its
      // checksum checked), then served from this host's copy.
      auto got = bucket_->get_file(layout::artifact_key(id, file), local);
      if (!got) return error_response(got.error());
      if (!*got) return error_response(404, "not_found", fmt::format("job {}'s artifact {} is missing from {}", id, file,
                                                                    bucket_->describe()));
      if (module && util::sha256_file(local).value_or("") != unit.sha256) {
        fs::remove(local, ec);
        return error_response(500, "internal", fmt::format("job {}'s module in {} is not the one compiled", id,
                                                          bucket_->describe()));
      }
    }
    Response resp{200, module ? "application/octet-stream" : "application/json", "", {}, {}};
    resp.file = local;
    resp.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + file + "\"");
    return resp;
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
  CompileStats stats = worker_ ? worker_->stats() : CompileStats{};
  m += "# HELP kiln_compile_duration_seconds Wall time of compile units since the service started.\n"
       "# TYPE kiln_compile_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < stats.bounds.size(); ++i) {
    cumulative += stats.buckets[i];
    m += fmt::format("kiln_compile_duration_seconds_bucket{{le=\"{}\"}} {}\n", stats.bounds[i], cumulative);
  }
  cumulative += stats.buckets.back();
  m += fmt::format("kiln_compile_duration_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  m += fmt::format("kiln_compile_duration_seconds_sum {}\nkiln_compile_duration_seconds_count {}\n", stats.duration_sum,
                   stats.duration_count);
  m += "# HELP kiln_cache_hits_total Compile units served from the artifact cache.\n# TYPE kiln_cache_hits_total counter\n";
  m += fmt::format("kiln_cache_hits_total {}\n", stats.cache_hits);
  m += "# HELP kiln_cache_misses_total Compile units that had to compile.\n# TYPE kiln_cache_misses_total counter\n";
  m += fmt::format("kiln_cache_misses_total {}\n", stats.cache_misses);
  m += "# HELP kiln_cache_shared_hits_total Compile units served from the fleet's shared cache.\n"
       "# TYPE kiln_cache_shared_hits_total counter\n";
  m += fmt::format("kiln_cache_shared_hits_total {}\n", stats.shared_hits);
  m += "# HELP kiln_http_responses_total HTTP responses by status.\n# TYPE kiln_http_responses_total counter\n";
  std::lock_guard<std::mutex> lock(metrics_mu_);
  for (const auto& [status, n] : responses_) m += fmt::format("kiln_http_responses_total{{code=\"{}\"}} {}\n", status, n);
  return {200, "text/plain; version=0.0.4", m, {}, {}};
}

}  // namespace kiln::serve
