// A tuning bundle: everything a GPU host needs to measure the candidates of
// one program on one target, with the runtime alone. Layout:
//
//   bundle.json               "kiln-tune-bundle" v1 (see Bundle)
//   modules/<id>.<slug>.vmfb  one module per compiled whole-program candidate,
//                             with kiln's metadata next to it (<id>.<slug>.json)
//   dispatches/<id>.vmfb      round 1: one small module per dispatch candidate,
//                             the compiler's benchmark program of one executable
//                             with the candidate's configuration substituted
//   configs/<id>/<exe>.mlir   the executable configurations a candidate
//                             substituted (kept for `kiln tune apply`)
//   results.json              written by `kiln tune measure` ("kiln-tune-results" v1)
//
// Inputs are not carried: they are seeded values of the signature, made
// again on the measuring host, and the reference outputs come from the
// reference module run there on the same inputs.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

namespace kiln::tune {

namespace fs = std::filesystem;

inline constexpr int kBundleVersion = 2;
inline constexpr int kResultsVersion = 1;

struct Candidate {
  std::string id;       // "reference", "rt-caching", "d-main_dispatch_0-03", ...
  std::string level;    // "reference", "runtime", "program", "dispatch", "combined"
  std::string summary;  // what differs from the reference, in one line
  std::string module;   // the module's path inside the bundle
  std::vector<std::string> compile_flags;            // whole-program options beyond the reference's
  std::map<std::string, std::string> configs;        // executable -> config file inside the bundle
  std::map<std::string, std::string> dispatches;     // executable -> describe() of its configuration
  std::string runtime_name = "defaults";
  std::vector<std::string> runtime_flags;
  // A dispatch candidate (round 1): the digest of the executable it tunes
  // (dispatches.h); its module is that executable's benchmark program, timed
  // alone. Without `configs` it is the executable's untuned baseline.
  std::string executable;
};

struct Bundle {
  fs::path dir;
  int round = 1;  // 1: explore each level on its own; 2: combinations of round 1's winners
  std::string iree_release;
  std::string target_spec, target_slug, backend, runtime_device;
  std::string gpu;  // the GPU the target names ("h100"), "" for an architecture or a CPU
  std::string program_name, program_sha256;
  std::string precision;
  std::string invocation = "sync";  // the calling convention every candidate was built with
  std::vector<std::string> options; // compiler options every candidate was built with (compile::tuning_options)
  std::string function;
  uint64_t seed = 0;
  std::vector<Candidate> candidates;
  nlohmann::json dispatches = nlohmann::json::array();  // what prepare found in the program
  // Round 1: each distinct executable {digest, names, ...}; round 2: the
  // winners it applied {digest, names, candidate, baseline_ms, best_ms}.
  nlohmann::json executables = nlohmann::json::array();
  nlohmann::json dropped = nlohmann::json::array();     // candidates not kept, and why
  std::string created_at;
};

nlohmann::json to_json(const Bundle& bundle);
Status write_bundle(const Bundle& bundle);
// Reads DIR/bundle.json; errors say what is wrong and how to fix it.
Result<Bundle> read_bundle(const fs::path& dir);
// sha256 of DIR/bundle.json: results name the bundle they measured.
Result<std::string> bundle_digest(const fs::path& dir);

struct Measurement {
  std::string id;
  std::string status;       // "ok", "mismatch", "failed", "timeout"
  double latency_ms = 0;    // amortized: mean per call over back-to-back calls (median of repetitions)
  double p50_ms = 0;        // per-call p50, when measured
  double max_abs_error = 0;
  std::string message;      // why it is not "ok"
};

struct Results {
  std::string bundle_digest;
  std::string device_uri, device_name;
  std::string measured_at;
  std::vector<Measurement> measurements;
  nlohmann::json profile;   // the reference module's per-dispatch profile, when taken
  double seconds = 0;       // wall time of the measurement, summed over resumptions

  const Measurement* find(const std::string& id) const;
};

nlohmann::json to_json(const Results& results);
Result<Results> read_results(const fs::path& file);

}  // namespace kiln::tune
