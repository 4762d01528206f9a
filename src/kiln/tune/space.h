// The tuner's candidate space, in three levels: per-dispatch lowering
// configurations, whole-program compiler options, and runtime options.
// Candidates that break the target's declared limits (threads and shared
// memory per workgroup, workgroup sizes) or do not divide the problem are
// pruned here, before anything is compiled.
#pragma once

#include <string>
#include <vector>

#include "kiln/target/target.h"
#include "kiln/tune/executable.h"

namespace kiln::tune {

struct DispatchCandidate {
  Fields root;                          // the new root lowering_config
  std::vector<int64_t> workgroup_size;  // the matching workgroup size (GPU)
  Fields pipeline_options;              // translation_info pipeline options to set (GPU)
  std::string summary;                  // describe(root)
  double score = 0;                     // lower is more promising
};

// Up to `limit` configurations for one dispatch, never the compiler's own
// choice (that is the reference), and then, on the GPU SIMT path, each
// promoted one again with padded shared memory (so up to 2 * `limit`).
// A batched contraction (a split-K partial product, a batch matmul) gives
// a quarter of the `limit` slots, at least two, to tiles of one batch
// element per workgroup sized to fill the GPU, first; the other slots are
// the most promising tiles first. Empty for a dispatch kiln cannot tune.
std::vector<DispatchCandidate> dispatch_candidates(const Executable& exe, size_t limit);

struct OptionSet {
  std::string name;                 // "O3", "caching+sync-alloc"
  std::vector<std::string> flags;
};

// Whole-program compiler option sets worth trying for a backend; the first
// is always the empty set (the compiler's defaults).
std::vector<OptionSet> program_option_sets(target::Backend backend);

// Whole-program option sets that change which dispatches the program has
// (split-K: each long contraction becomes a batched partial contraction and
// a reduction), offered when one of `executables` (the reference's dispatches)
// is a contraction with few output tiles for a data-centre GPU and a long
// reduction. Their dispatches are tuned under those options, apart from the
// reference's. Empty for programs that have enough parallel work.
std::vector<OptionSet> reshaping_option_sets(target::Backend backend, const std::vector<Executable>& executables);

// Runtime option sets for a runtime device ("cuda", "local-task", ...); the
// first is always the runtime's defaults.
std::vector<OptionSet> runtime_option_sets(const std::string& runtime_device);

// Bytes per element of the first type in "bf16xbf16xf32" (4 when unknown).
int element_bytes(const std::string& element);

}  // namespace kiln::tune
