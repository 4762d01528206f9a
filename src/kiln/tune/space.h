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
  std::string pipeline;                 // another GPU pipeline ("VectorDistribute"); empty: the compiler's
  std::string summary;                  // describe(root)
  double score = 0;                     // lower is more promising
};

// Up to `limit` configurations for one dispatch, never the compiler's own
// choice (that is the reference), and then, on the GPU SIMT path, each
// promoted one again with padded shared memory (so up to 2 * `limit`).
// A batched contraction (a split-K partial product, a batch matmul) gives
// a quarter of the `limit` slots, at least two, to tiles of one batch
// element per workgroup sized to fill the GPU, first; the other slots are
// the most promising tiles first. On the GPU MMA path each tile kept is
// also tried under the VectorDistribute pipeline (same workgroup tile,
// subgroup grid and K step), so up to 2 * `limit` there too.
// Empty for a dispatch kiln cannot tune.
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
// reduction; and, for programs whose contractions run on tensor cores, one
// that stores each matmul's right-hand side transposed first (K innermost
// for both operands: 32-bit shared-memory reads instead of 16-bit ones, for
// one transposing dispatch). Their dispatches are tuned under those options,
// apart from the reference's. Empty for programs that need neither.
std::vector<OptionSet> reshaping_option_sets(target::Backend backend, const std::vector<Executable>& executables);

// Runtime option sets for a runtime device ("cuda", "local-task", ...); the
// first is always the runtime's defaults.
std::vector<OptionSet> runtime_option_sets(const std::string& runtime_device);

// Round 2's combinations of each dispatch's finalists, given how many each
// has (its best first): index tuples, every dispatch's best first; all of
// them when there are at most nine, else that first one and each dispatch's
// other finalists swapped in one at a time.
std::vector<std::vector<size_t>> combinations(const std::vector<size_t>& counts);

// Bytes per element of the first type in "bf16xbf16xf32" (4 when unknown).
int element_bytes(const std::string& element);

}  // namespace kiln::tune
