// One dispatch's executable as the compiler configured it: the file that
// `--iree-hal-dump-executable-configurations-to` writes after strategy
// selection. kiln reads the root op's lowering configuration and the
// pipeline from it, and writes a copy with another configuration, which
// `--iree-hal-substitute-executable-configurations-from` compiles in its
// place. No IR is built: the attributes are found and rewritten as text.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/util/error.h"

namespace kiln::tune {

// What the target declares about itself (from #iree_gpu.target<...>).
struct TargetLimits {
  int64_t max_threads = 1024;
  int64_t max_workgroup_memory = 48 * 1024;
  std::vector<int64_t> max_workgroup_sizes{1024, 1024, 64};
  int64_t subgroup_size = 32;
  std::vector<std::string> mma;  // intrinsics: "NV_MMA_SYNC_F32_16x8x16_BF16", ...
};

enum class Family {
  kNone,        // not tunable by kiln (no root config, or a shape kiln does not know)
  kGpuSimt,     // TileAndFuse with workgroup / thread / reduction tiles
  kGpuMma,      // TileAndFuse with an MMA intrinsic: workgroup / subgroup / reduction
  kCpuTiling,   // llvm-cpu: distribution / cache_parallel / vector tiles
};

const char* family_name(Family family);

// An attribute dictionary kept in its written order: {key = value, flag, ...}.
using Fields = std::vector<std::pair<std::string, std::string>>;

struct Executable {
  std::string name;      // hal.executable symbol: "main_dispatch_0"
  std::string function;  // the export: "main_dispatch_0_matmul_256x4096x1024_f32"
  std::string op_kind;   // "matmul", "batch_matmul", "conv", "reduction", ...
  std::vector<int64_t> bounds;  // loop bounds from the export's name, when it has them
  std::string element;   // "f32", "bf16xbf16xf32"
  std::string pipeline;  // "TileAndFuse", "DoubleTilingExpert", ...
  std::vector<int64_t> workgroup_size;
  Family family = Family::kNone;
  Fields root;           // the root op's lowering_config
  bool root_braced = false;  // written as <{...}> (GPU) rather than <...> (CPU)
  size_t root_begin = 0, root_end = 0;  // the span of the root config's text in `text`
  size_t wg_begin = 0, wg_end = 0;      // the span of workgroup_size's "[...]" (0 when absent)
  TargetLimits limits;
  std::string text;      // the whole file
};

// Reads one dumped configuration file's text.
Result<Executable> parse_executable(const std::string& text);

// "[1, 16, 0]" <-> {1, 16, 0}
std::vector<int64_t> parse_ints(const std::string& list);
std::string format_ints(const std::vector<int64_t>& values);

// The value of a field, or "" when absent.
std::string field(const Fields& fields, const std::string& key);
// Sets (or adds, or with an empty value removes) a field.
void set_field(Fields& fields, const std::string& key, const std::string& value);

// The executable's text with another root configuration and workgroup size,
// and the given translation_info pipeline options set (GPU: for example
// no_reduce_shared_memory_bank_conflicts = false); an option the file does
// not have is added to its pipeline_options.
std::string render(const Executable& exe, const Fields& root, const std::vector<int64_t>& workgroup_size,
                   const Fields& pipeline_options = {}, const std::string& pipeline = {});

// "workgroup=[64,64,1] thread=[4,4,0] reduction=[0,0,32] promote": short and stable.
std::string describe(const Fields& root);

}  // namespace kiln::tune
