// Compile targets: what users type ("cuda:h100", "cpu", "rocm:gfx942") and
// the flags the pinned IREE release needs for each. IREE has renamed its
// target flags across releases; this table is where kiln keeps that
// knowledge, so users never type an iree-compile flag.
#pragma once

#include <string>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::target {

enum class Backend { kCuda, kCpu, kVulkan, kMetal, kRocm };

struct Target {
  Backend backend;
  std::string spec;     // as the user wrote it: "cuda:h100"
  std::string arch;     // resolved: "sm_90", "x86_64", "rdna3", "macos", "gfx942"
  std::string cpu;      // CPU targets only: "host", "znver4", "generic"
  std::string slug;     // file-name part: "cuda-sm_90", "cpu-host", "rocm-gfx942"
  std::vector<std::string> flags;  // iree-compile flags for the pinned release
  std::string note;     // how kiln resolved it, when that is not obvious
  std::string runtime_device;      // iree-run-module --device: "local-task", "cuda", ...
};

// Parses and resolves a target spec. An unsupported target is an error that
// names the nearest working choice.
Result<Target> resolve(const std::string& spec);

struct TargetFamily {
  std::string syntax;    // "cuda:<sm_NN | gpu>"
  std::string backend;   // IREE's backend name
  std::vector<std::string> choices;  // every accepted value, in the table's order
  std::string note;
};

// Everything the pinned release accepts, for `kiln targets`.
std::vector<TargetFamily> supported_targets();

const char* backend_name(Backend backend);

}  // namespace kiln::target
