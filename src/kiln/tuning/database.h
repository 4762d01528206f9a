// The tuning database: what `kiln tune apply` chose for a program on a
// target, and what `kiln compile` uses from then on. Layout under the root
// (the `tuning_dir` setting, default $XDG_DATA_HOME/kiln/tuning):
//
//   v1/<key>/record.json     "kiln-tuning-record" v1 (see Record)
//   v1/<key>/configs/*.mlir  executable configurations, one per tuned
//                            dispatch, named after the hal.executable
//   v1/tmp/                  records being written; renamed into place whole
//
// The key is a digest of the program's bytes, the target, the IREE release,
// the precision policy, the calling convention and the compiler options: a
// record never applies to another program, release, policy or options. Records are replaced whole.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

namespace kiln::tuning {

namespace fs = std::filesystem;

inline constexpr int kFormatVersion = 1;

struct Identity {
  std::string program_sha256;
  std::string target_slug;   // "cuda-sm_90"
  std::string iree_release;  // "3.13.0"
  std::string precision;     // "highest", "f16-inputs", "bf16-inputs"
  std::string invocation = "sync";  // "sync", "async" (coarse fences)
  // The compiler options the program was tuned under, beyond precision and
  // invocation (optimization level, data tiling, extra flags), in the order
  // given: a record tuned with flags applies only to compiles with the same.
  std::vector<std::string> options;
};

// The tagged digest of an identity: the record's folder name.
std::string key_of(const Identity& id);

struct Record {
  Identity id;
  std::string key;
  std::string program_name;
  std::string target_spec;               // "cuda:h100"
  std::string device;                    // what it was measured on: "NVIDIA H100 80GB HBM3"
  std::string candidate;                 // the winning candidate's id in its bundle
  std::string summary;                   // one line: what was chosen
  std::vector<std::string> compile_flags;   // whole-program options, added to every compile
  std::vector<std::string> runtime_flags;   // the deployment recipe: flags for the runtime tools
  double latency_ms = 0;                 // the winner, amortized over back-to-back calls
  double baseline_ms = 0;                // the untuned module with default runtime options
  std::string measured_at;               // UTC, ISO 8601
  nlohmann::json dispatches = nlohmann::json::object();  // executable -> what its configuration is
  fs::path configs_dir;                  // set when read back: where the .mlir files are ("" if none)
  // Digest of everything that changes the compiled module (flags and
  // configuration files): part of the artifact cache's key.
  std::string module_digest;
};

nlohmann::json to_json(const Record& record);
Result<Record> record_from_json(const nlohmann::json& j, const std::string& where);

class Database {
 public:
  // Opens (creating nothing until the first write).
  explicit Database(fs::path root) : root_(std::move(root)) {}
  const fs::path& root() const { return root_; }

  // The record for an identity, if any. A damaged record is an error.
  Result<std::optional<Record>> find(const Identity& id) const;
  // Writes a record and its configuration files (name -> text), replacing
  // any record of the same identity. Returns the stored record.
  Result<Record> put(Record record, const std::vector<std::pair<std::string, std::string>>& configs);
  // Every record, sorted by program name then target.
  Result<std::vector<Record>> list() const;
  // Removes records whose key starts with `prefix` (at least 6 characters)
  // or whose program name equals it; returns how many.
  Result<int> forget(const std::string& prefix_or_name);

 private:
  fs::path root_;
};

// $XDG_DATA_HOME/kiln/tuning, or ~/.local/share/kiln/tuning.
fs::path default_root();

// A record's configurations are named by executable: "main_dispatch_0" is
// an executable configuration (stored as main_dispatch_0.mlir), and a name
// with the ".ptx" extension is a kernel object that replaces the
// executable's code (stored under its own name).
bool is_kernel_object(const std::string& name);
std::string config_file_name(const std::string& name);
// The inverse: a stored file's configuration name ("" for another file).
std::string config_name(const std::string& file_name);

// Digest over compile flags and configuration file texts.
std::string module_digest(const std::vector<std::string>& compile_flags,
                          const std::vector<std::pair<std::string, std::string>>& configs);

}  // namespace kiln::tuning
