// A job's request (what a client asked for) and the rule that says when its
// result is complete. The request is stored as JSON in the job row; this is
// its one reader, used by the store's invariant and by the worker that plans
// the job's compile units.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/job/job.h"
#include "kiln/util/error.h"

namespace kiln::serve {

struct JobRequest {
  std::vector<std::string> targets;  // as the client spelled them, in order
  size_t bindings = 0;               // entries of options.bind; 0: the program as it is

  // Compile units the job runs: one per target, or per target and binding.
  size_t planned_units() const { return targets.size() * (bindings ? bindings : 1); }
};

// JSON as the stores keep it: bytes that are not UTF-8 (from a user or a
// compiler) become U+FFFD instead of failing the write.
std::string stored_json(const nlohmann::json& value);

// What a request may ask for at most, checked before any work that grows
// with it.
inline constexpr size_t kMaxTargets = 64;
inline constexpr size_t kMaxBindings = 64;

// Kiln's own checks of a submitted request, before the schema's (which
// reports every pair of duplicates): at most kMaxTargets targets and
// kMaxBindings bindings, none twice. The first problem only, in a message
// of bounded size. Fields of the wrong type are left to the schema.
Status check_request_limits(const nlohmann::json& doc);

// The compile options of a job request (its "options" object, already
// checked against the job schema), checked as a remote client's; a job's own
// time limit can only lower the service's `job_timeout`.
Result<job::JobOptions> compile_options(const nlohmann::json& request, std::chrono::seconds job_timeout);

// One compile unit's end, as a worker records it in the job's result and
// the API shows it: one writer (unit_json) and one checking reader
// (read_units), which the store's invariant and artifact serving use.
struct UnitResult {
  std::string target;
  bool ok = false;
  nlohmann::json binding;  // {"b": 8} for a unit of a binding; null otherwise
  // A finished unit: its files (in the job's out/ folder, or the shared
  // store) and how it was made.
  std::string module, metadata, sha256, worker, cache_source;
  uint64_t size_bytes = 0;
  bool cache_hit = false;
  double compile_seconds = 0;
  // A failed unit.
  std::string error_code, error_message;
};

// The unit as JSON, with the links a client downloads its files from.
nlohmann::json unit_json(const UnitResult& unit, const std::string& job_id);
// A job's stored result (a list of units); names the JSON path of a bad field.
Result<std::vector<UnitResult>> read_units(const nlohmann::json& units);

// Reads a stored or submitted request; names the JSON path of a bad field.
Result<JobRequest> read_job_request(const nlohmann::json& doc);

// The invariant of a succeeded job: `units` (the result a worker records)
// holds a finished unit ("ok": true) for every unit the request plans, and
// nothing else. kFailedPrecondition, saying what is missing, otherwise.
Status check_succeeded(const JobRequest& request, const nlohmann::json& units);

}  // namespace kiln::serve
