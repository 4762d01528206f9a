#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "kiln/cli/tuning_db.h"
#include "kiln/cache/store.h"
#include "kiln/cli/cache_setting.h"
#include "kiln/cli/executors.h"
#include "kiln/cli/parse.h"
#include "kiln/compile/pool.h"
#include "kiln/docker/container_executor.h"
#include "kiln/serve/http.h"
#include "kiln/serve/service.h"
#include "kiln/serve/worker.h"
#include "kiln/util/file.h"
#include "kiln/util/signals.h"
#include "kiln/util/strings.h"

namespace kiln::cli {

namespace {

Result<std::vector<std::string>> read_tokens(const std::string& file) {
  std::vector<std::string> tokens;
  if (!file.empty()) {
    auto text = KILN_TRY(util::read_file(file));
    for (const auto& line : util::split(text, '\n')) {
      auto t = util::trim(line);
      if (!t.empty() && t[0] != '#') tokens.emplace_back(t);
    }
  }
  if (const char* env = std::getenv("KILN_SERVE_TOKENS"); env && *env) {
    for (const auto& t : util::split(env, ',')) {
      if (!util::trim(t).empty()) tokens.emplace_back(util::trim(t));
    }
  }
  for (const auto& t : tokens) {
    if (t.size() < 16) return fail(Code::kInvalidArgument, "a bearer token is shorter than 16 characters; use long random tokens");
  }
  if (tokens.empty()) {
    return fail(Code::kInvalidArgument, "no bearer tokens: give --tokens-file FILE (one token a line) or KILN_SERVE_TOKENS");
  }
  return tokens;
}

// Docker when an engine and kiln's image are there, unless a setting or
// flag chose; the local toolchain otherwise.
Result<Selected> choose_executor(const Context& context, const std::string& flag) {
  if (!flag.empty() || context.config.origins.at("executor") != "default") {
    return select_executor(context, flag, Need::kCompiler);
  }
  if (auto docker = select_executor(context, "docker", Need::kCompiler)) return docker;
  else std::cerr << "kiln serve: compiling locally (" << docker.error().message << ")\n";
  return select_executor(context, "local", Need::kCompiler);
}

// What `kiln serve` and `kiln worker` share: where jobs and artifacts are,
// how workers compile, and the cache.
struct Common {
  std::string data_dir = "kiln-data", queue, store, executor;
  int workers = 0;
  double job_timeout = 1800, lease = 30, grace = 30;
  int max_attempts = 3;

  void add_to(CLI::App& app, const char* workers_help) {
    app.add_option("--data-dir", data_dir, "this host's folder for jobs, uploads and artifacts (default ./kiln-data)");
    app.add_option("--queue", queue, "the job queue: postgresql://USER@HOST/DB for a fleet (default: the setting "
                                     "queue, KILN_QUEUE; empty: SQLite in the data folder)");
    app.add_option("--store", store, "shared store for uploads, artifacts and the fleet's cache: s3://BUCKET/PREFIX "
                                     "(AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or a "
                                     "folder all hosts see (default: the setting store, KILN_STORE)");
    app.add_option("--workers", workers, workers_help)->check(CLI::Range(0, 1024));
    app.add_option("--job-timeout", job_timeout, "time limit of each compile, seconds (default 1800)");
    app.add_option("--lease", lease, "seconds a worker's claim on a job lasts without renewal; a job whose worker "
                                     "stops renewing runs again elsewhere after this (default 30)")
        ->check(CLI::Range(1.0, 86400.0));
    app.add_option("--grace", grace, "on SIGTERM/SIGINT, seconds running compiles may take to finish before they "
                                     "are stopped and their jobs queued again (default 30; a second signal stops "
                                     "them at once)")
        ->check(CLI::Range(0.0, 86400.0));
    app.add_option("--max-attempts", max_attempts, "starts of one job before it is failed (default 3)")
        ->check(CLI::Range(1, 100));
    app.add_option("--executor", executor, "local or docker (default: docker when its engine and image are there)")
        ->check(CLI::IsMember({"local", "docker"}));
  }

  Result<serve::ServiceOptions> options(const Context& context) const {
    serve::ServiceOptions o;
    o.data_dir = data_dir;
    o.queue = queue.empty() ? context.settings.queue : queue;
    o.store = store.empty() ? context.settings.store : store;
    o.workers = workers;
    o.job_timeout = std::chrono::seconds(static_cast<int64_t>(job_timeout));
    o.lease_seconds = lease;
    o.max_attempts = max_attempts;
    o.grace = std::chrono::milliseconds(static_cast<int64_t>(grace * 1000));
    if (auto db = tuning_for_compiles(context.settings)) o.tuning_dir = db->root();
    return o;
  }
};

std::string describe(const serve::ServiceOptions& o, const std::string& executor, const std::string& release) {
  return fmt::format("{} worker(s), executor {}, IREE {}, queue {}, store {}", o.workers, executor, release,
                     o.queue.empty() ? (o.data_dir / "kiln.db").string() : serve::without_password(o.queue),
                     o.store.empty() ? o.data_dir.string() : o.store);
}

}  // namespace

Result<int> run_serve(Context& context) {
  CLI::App app{"Run the compile service over HTTP (see docs/service.md; GET /v1/openapi.json describes the API).", "serve"};
  std::string listen = "127.0.0.1:8080", tokens_file, port_file, max_upload = "256M";
  int max_queue = 64;
  Common common;
  common.workers = -1;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any free port; default 127.0.0.1:8080)");
  app.add_option("--tokens-file", tokens_file, "bearer tokens, one a line (also: KILN_SERVE_TOKENS, comma-separated)");
  app.add_option("--max-upload", max_upload, "largest accepted upload (default 256M)");
  app.add_option("--max-queue", max_queue, "jobs that may wait; more get 429 (default 64)")->check(CLI::Range(1, 1000000));
  app.add_option("--port-file", port_file, "write the port bound to this file (for --listen HOST:0)");
  common.add_to(app, "jobs compiled at once on this host (default: one per CPU; 0: the HTTP front only, with a "
                     "shared queue and `kiln worker`s elsewhere)");
  serve::HttpOptions http;
  double header_timeout = 10, body_timeout = 30;
  app.add_option("--max-connections", http.max_connections, "open connections in all (default 256)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--max-connections-per-client", http.max_connections_per_client,
                 "open connections from one address (default 64); over a cap, the longest-idle one is closed")
      ->check(CLI::Range(1, 100000));
  app.add_option("--header-timeout", header_timeout,
                 "seconds a request's headers may take to arrive, and an idle connection stays open (default 10)")
      ->check(CLI::Range(0.05, 3600.0));
  app.add_option("--body-timeout", body_timeout,
                 "seconds an upload may lag behind 64 KiB/s of bytes received before it is dropped (default 30)")
      ->check(CLI::Range(0.05, 3600.0));
  if (KILN_TRY(parse_args(app, context))) return 0;
  http.body_timeout = std::chrono::milliseconds(static_cast<int64_t>(body_timeout * 1000));
  http.header_timeout = std::chrono::milliseconds(static_cast<int64_t>(header_timeout * 1000));

  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return fail(Code::kInvalidArgument, "--listen " + listen + ": expected HOST:PORT");
  http.host = listen.substr(0, colon);
  http.port_file = port_file;
  http.port = static_cast<int>(KILN_TRY(config::parse_number("the port of --listen", listen.substr(colon + 1), 0, 65535)));
  auto options = KILN_TRY(common.options(context));
  options.tokens = KILN_TRY(read_tokens(tokens_file));
  options.max_upload = KILN_TRY(cache::parse_size(max_upload));
  options.max_queue = max_queue;
  if (common.workers < 0) options.workers = compile::available_cpus();

  auto selected = KILN_TRY(choose_executor(context, common.executor));
  auto cache = KILN_TRY(cache_for_compiles(context.settings));
  std::string executor_name = selected.executor->name();
  // A signal now asks for a graceful stop; running compiles are the
  // service's to finish or stop.
  util::defer_interrupts();
  auto service = KILN_TRY(serve::Service::start(options, selected.tools, std::move(selected.executor), std::move(cache)));
  std::cerr << fmt::format("kiln serve: {}{}\n", describe(options, executor_name, selected.tools.release),
                           service->recovered() ? fmt::format("; {} interrupted job(s) re-queued", service->recovered()) : "");
  auto served = serve::serve_http(*service, http);
  std::cerr << "kiln serve: stopping (running jobs finish within the grace period or go back to the queue)\n";
  service->stop();
  if (!served) return tl::unexpected(served.error());
  std::cerr << "kiln serve: stopped\n";
  return 0;
}

Result<int> run_worker(Context& context) {
  CLI::App app{"Compile jobs of a shared queue (a fleet's worker; see docs/fleet.md). Stops gracefully on SIGTERM: "
               "running jobs go back to the queue.", "worker"};
  Common common;
  common.workers = 1;
  common.add_to(app, "jobs compiled at once (default 1)");
  if (KILN_TRY(parse_args(app, context))) return 0;
  auto options = KILN_TRY(common.options(context));
  if (options.workers < 1) return fail(Code::kInvalidArgument, "--workers: a worker compiles at least one job at a time");
  if (options.queue.empty()) {
    return fail(Code::kInvalidArgument, "kiln worker takes jobs from a shared queue: give --queue postgresql://USER@HOST/DB "
                                        "(or KILN_QUEUE) and --store s3://BUCKET/PREFIX (or KILN_STORE)");
  }
  auto selected = KILN_TRY(choose_executor(context, common.executor));
  auto cache = KILN_TRY(cache_for_compiles(context.settings));
  std::string executor_name = selected.executor->name();
  util::defer_interrupts();
  // The worker alone: no HTTP API is built.
  auto backends = KILN_TRY(serve::open_backends(options.data_dir, options.queue, options.store));
  serve::WorkerOptions w{options.data_dir, options.lease_seconds, options.workers, options.job_timeout,
                         options.max_attempts, options.tuning_dir, options.grace};
  auto worker = KILN_TRY(serve::Worker::start(std::move(w), selected.tools, std::move(selected.executor),
                                              std::move(cache), std::move(backends)));
  std::cerr << fmt::format("kiln worker {}: {}\n", worker->id(), describe(options, executor_name, selected.tools.release));
  while (!util::shutdown_requested()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::cerr << "kiln worker: stopping (running jobs finish within the grace period or go back to the queue)\n";
  worker->stop();
  std::cerr << "kiln worker: stopped\n";
  return 0;
}

}  // namespace kiln::cli
