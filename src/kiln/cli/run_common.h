// What `kiln run`, `validate` and `bench` share: finding the runtime, reading
// the module's signature, and gathering inputs (files, or seeded values).
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/array/array.h"
#include "kiln/cli/commands.h"
#include "kiln/cli/executors.h"
#include "kiln/runtime/module.h"

namespace kiln::cli {

struct InputOptions {
  std::vector<std::string> input_files;  // --input a.npy (in argument order)
  std::string inputs_archive;            // --inputs in.npz
  std::vector<std::string> shapes;       // --shape 0=4x8 or --shape x=4x8, for dynamic dimensions
  uint64_t seed = 0;
};

// Adds --input, --inputs, --shape and --seed to a command.
void add_input_options(CLI::App& app, InputOptions& options);

// What run, validate and bench all take: the module, its function and
// device, where the tools run, a time limit, and the inputs.
struct ModuleOptions {
  std::string module;
  std::string function;
  std::string device;
  std::string executor;
  double timeout = 600;
  InputOptions inputs;
  std::vector<std::string> runtime_flags;  // --runtime-flag: replaces the module's deployment recipe
  bool default_runtime = false;            // --default-runtime: the runtime's defaults, no recipe
};
void add_module_options(CLI::App& app, ModuleOptions& options, bool module_required = true);

// The executor and toolchain, the module's signature and its inputs.
struct LoadedModule {
  Selected selected;
  runtime::ModuleSignature signature;
  std::vector<array::Array> inputs;
  std::chrono::milliseconds timeout;
};
Result<LoadedModule> load_module(const Context& context, const ModuleOptions& options);

// `flag`, or MODULE with its extension replaced by `suffix` (".run"), created.
Result<std::filesystem::path> output_folder(const std::string& module, const std::string& flag, const char* suffix);

// Inputs from files (checked against the signature, raw bf16/f8 given their
// types) or, with no files, seeded values of the signature's shapes.
Result<std::vector<array::Array>> gather_inputs(const runtime::ModuleSignature& sig, const InputOptions& options);

// Arrays from .npz (archive order, or by argument name when every name
// matches) or a list of .npy files, typed by `values`.
// `declared`: the program's element type of each value where the module
// narrowed it (runtime::ModuleSignature); arrays of that type are converted.
Result<std::vector<array::Array>> read_values(const std::vector<std::string>& npy_files, const std::string& npz,
                                              const std::vector<mlir::Value>& values, const char* what,
                                              const std::vector<std::string>& declared = {});

// The runtime options a run uses: --runtime-flag when given, else the
// module's deployment recipe (tuned runtime options), unless --default-runtime.
std::vector<std::string> runtime_flags_for(const ModuleOptions& options, const runtime::ModuleSignature& sig);

// --device, else the device kiln's metadata names, else the local CPU.
std::string choose_device(const std::string& flag, const runtime::ModuleSignature& sig);

// Saves arrays as PREFIX0.npy, PREFIX1.npy, ... in `dir`.
Status save_arrays(const std::filesystem::path& dir, const std::string& prefix, const std::vector<array::Array>& arrays);

// One line about an array: "f32 [8, 16]  min -1.2  max 3.4  mean 0.01".
std::string summarize(const array::Array& a);

}  // namespace kiln::cli
