#include "kiln/cli/commands.h"

#include <iostream>

#include <nlohmann/json.hpp>

#include "kiln/cli/parse.h"
#include "kiln/version.h"

namespace kiln::cli {
namespace {

Result<int> run_version(Context& context) {
  CLI::App app{"Print kiln's version and the IREE release it is pinned to.", "version"};
  bool json = false;
  app.add_flag("--json", json, "as JSON: {\"version\": ..., \"iree_release\": ...}");
  if (KILN_TRY(parse_args(app, context))) return 0;
  if (json) {
    std::cout << nlohmann::json{{"version", KILN_VERSION}, {"iree_release", KILN_IREE_RELEASE}}.dump() << "\n";
  } else {
    std::cout << "kiln " << KILN_VERSION << " (IREE " << KILN_IREE_RELEASE << ")\n";
  }
  return 0;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"inspect", "describe a StableHLO file: module, dialects, function signatures", run_inspect},
      {"compile", "compile StableHLO into IREE modules (.vmfb) for one or more targets", run_compile},
      {"run", "run a compiled module once on given or seeded inputs; save inputs and outputs as .npy", run_run},
      {"validate", "check a module's outputs against expected ones or another build (exit 1 on mismatch)", run_validate},
      {"bench", "measure a module's latency (p50/p90/p99, throughput); compare reports for CI gates", run_bench},
      {"profile", "where a module's time goes, per dispatch (the runtime's own profiling)", run_profile},
      {"tune", "tune a program for a target on a real device (prepare, measure, apply; list/show/forget records)", run_tune},
      {"serve", "run the compile service over HTTP (jobs in SQLite or PostgreSQL, bearer tokens, Prometheus metrics)", run_serve},
      {"worker", "compile jobs of a shared queue (a fleet's worker)", run_worker},
      {"cache", "show cache statistics (stats) or empty the artifact cache (clear)", run_cache},
      {"check", "validate a job file against the job schema without compiling", run_check},
      {"schema", "print the JSON Schema of job files", run_schema},
      {"targets", "list the targets the pinned IREE release supports", run_targets},
      {"doctor", "check the toolchain, Docker and the NVIDIA driver, and say how to fix problems", run_doctor},
      {"version", "print kiln's version and the pinned IREE release", run_version},
      {"__exec", nullptr, run_exec},
  };
  return table;
}

}  // namespace kiln::cli
