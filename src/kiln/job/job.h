// Job files: the JSON-configured compile entry point. A versioned JSON Schema
// (schemas/job.schema.json, built into kiln) defines them; files are checked
// with a real JSON Schema validator before anything runs.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/compile/compile.h"
#include "kiln/mlir/jax_export.h"
#include "kiln/target/target.h"

namespace kiln::job {

namespace fs = std::filesystem;

struct Input {
  fs::path path;     // resolved against the job file's folder
  std::string name;  // output base name
};

struct Job {
  fs::path file;
  std::vector<Input> inputs;
  std::vector<target::Target> targets;
  compile::Options options;
  bool has_timeout = false;
  fs::path output_dir;
  // options.bind: one static module per binding; empty: the program as it is.
  std::vector<mlir::Binding> bindings;
};

// The schema as JSON text (what `kiln schema` prints).
const char* schema_text();

// One schema violation: where in the document, what was found, what was expected.
struct Violation {
  std::string pointer;  // JSON pointer, "/targets/1"
  std::string message;
};

// Checks a document against the schema; empty when it conforms.
std::vector<Violation> validate_schema(const nlohmann::json& document);

// Reads, validates and resolves a job file: the schema first, then what a
// schema cannot say (targets exist, inputs exist, output names do not
// collide, nothing is written outside the output folder).
Result<Job> load(const fs::path& file);
// The same for a job's text: `file` names it in errors and its folder is
// where relative paths resolve; it is not read.
Result<Job> parse(std::string_view text, const fs::path& file);

// The compile options of a job's "options" object (already checked against
// the schema), checked as the command line's are, and for a remote client
// of the service also against the flags it may pass. The one reading of
// options for job files and service requests alike.
struct JobOptions {
  compile::Options options;
  std::optional<double> timeout_seconds;  // the job's own limit, if it has one
  // "bind": sizes for a JAX export's symbolic dimensions, one module each.
  std::vector<mlir::Binding> bindings;
};
Result<JobOptions> options_from_json(const nlohmann::json& options, compile::Origin origin);

}  // namespace kiln::job
