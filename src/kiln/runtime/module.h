// What kiln needs to know about a compiled module before running it: which
// function, its input and output types, which IREE release built it, which
// device it is for. Read from kiln's metadata next to the module, or from the
// module's own reflection (iree-dump-module) when there is none.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/compile/executor.h"
#include "kiln/mlir/module_info.h"
#include "kiln/toolchain/toolchain.h"

namespace kiln::runtime {

namespace fs = std::filesystem;

struct ModuleSignature {
  fs::path path;
  std::string function;
  std::vector<mlir::Value> inputs;
  std::vector<mlir::Value> outputs;
  std::string iree_release;    // from kiln's metadata; "" when unknown
  std::string default_device;  // from kiln's metadata ("cuda", "local-task"); "" when unknown
  std::string source;          // "kiln metadata" or "module reflection"
  // The precision policy that built the module ("highest" when unknown).
  std::string precision = "highest";
  // The calling convention: "sync", or "async" (the function takes a wait
  // and a signal fence after its inputs; the runtime tools pass them).
  std::string invocation = "sync";
  // The deployment recipe kiln recorded (tuned runtime options), if any.
  std::vector<std::string> runtime_flags;
  // `inputs` and `outputs` have the types the module really has: where the
  // compiler narrowed a type (f64 computed as f32), these hold the
  // program's own element types, one per value ("" where nothing changed).
  std::vector<std::string> declared_inputs, declared_outputs;
};

// "f64 is computed as f32 by this module ...", once per module that has a
// narrowed value; "" when it has none.
std::string narrowing_note(const ModuleSignature& sig);

// Checks that `path` is an IREE module file (a zip with module.fb, or a bare
// FlatBuffer with the "IREE" identifier) before any runtime tool sees it.
Status check_module_file(const fs::path& path);

// Reads the signature of `function` ("" = the only public function). Refuses
// a module that kiln's metadata says was built by another IREE release than
// the runtime's, naming both.
Result<ModuleSignature> load(const fs::path& path, const std::string& function, const toolchain::Toolchain& tools,
                             compile::Executor& executor);

// Reads the signature of `function` ("" = the only one) from the text that
// iree-dump-module prints for `module` (its "iree.abi.declaration" lines).
Result<ModuleSignature> parse_reflection(std::string_view dump, const fs::path& module, const std::string& function);

// "input 0 (x)" / "output 1": how messages name a value of a signature.
std::string value_label(const mlir::Value& value, size_t index, const char* what);

// "cpu" -> "local-task"; anything else is passed to the runtime as it is.
std::string device_uri(const std::string& device);

}  // namespace kiln::runtime
