// Failures of the pinned compiler that kiln recognises, and what builds the
// program instead. This is the one table of them: when a compile fails with
// an entry's symptom on a target of one of its backends, kiln compiles again with
// the entry's flags added, records the fallback in the module's metadata
// ("fallbacks", docs/metadata.md) and says so. Each entry has a regression
// test that compiles a small real program which triggers it
// (tests/integration/fallback_test.cpp).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/target/target.h"

namespace kiln::compile {

struct Fallback {
  std::string_view name;     // "no-vector-distribution"
  std::vector<target::Backend> backends;  // the targets it applies to
  std::string_view symptom;  // a line of the compiler's stderr contains it
  std::vector<std::string> flags;  // added after every other flag
  std::string_view why;      // what failed and what the flags do, for users
};

// A fallback is first applied to the failing executables alone: kiln runs
// the compiler with the entry's flags up to its executable configurations
// and substitutes those executables' configurations in the compile without
// the flags, so every other dispatch keeps the compiler's first choice. If
// that compile fails too, the flags apply to the whole program.
//
// Bumped whenever an entry is added, removed or changed (here or among the
// configuration repairs below): it joins the cache key of every compile the
// tables can apply to, so a module built under an older table is not served
// as one built under this one.
inline constexpr int kFallbackTableVersion = 3;

const std::vector<Fallback>& fallbacks();

// Whether any entry applies to the backend.
bool may_fall_back(target::Backend backend);

// The first entry for this backend whose symptom is in `err` and which is
// not among `tried`; null when there is none.
const Fallback* match_fallback(std::string_view err, target::Backend backend, const std::vector<std::string>& tried);

// The executables whose dispatch functions the compiler's diagnostics show
// ("sym_name = \"main_dispatch_2_matmul_...\"" -> "main_dispatch_2"), in
// order, each once: the ones that failed.
std::vector<std::string> failing_executables(std::string_view err);

// The first line of `err` that holds the entry's symptom, trimmed and
// capped: what the metadata quotes.
std::string symptom_line(std::string_view err, const Fallback& fallback);

// One applied fallback as the metadata records it.
nlohmann::json fallback_json(const Fallback& fallback, const std::string& line);

// Configurations the pinned compiler chooses for a dispatch and then cannot
// build (it crashes, or spends many minutes on code it should not make).
// For a backend with entries, kiln first runs the compiler up to its
// executable configurations, repairs each configuration an entry matches,
// and compiles with the repaired ones in place of the compiler's: only those
// executables change. Each entry has a regression test that compiles a real
// program which needs it.
struct ConfigRepair {
  std::string_view name;                  // "tile-every-reduction"
  std::vector<target::Backend> backends;  // the targets it applies to
  // The repaired text of one dumped executable configuration, or nullopt
  // when the entry does not apply to it.
  std::optional<std::string> (*repair)(const std::string& text);
  std::string_view why;  // what goes wrong and what the repair does, for users
};

const std::vector<ConfigRepair>& config_repairs();

// Whether any configuration repair applies to the backend.
bool may_repair_configs(target::Backend backend);

// The symbol of the hal.executable a dumped configuration or benchmark
// program holds ("main_dispatch_4"), or "".
std::string executable_name(std::string_view text);

// Each repair's name and the executables it changed, sorted.
using RepairedConfigs = std::map<std::string, std::vector<std::string>>;

// Applies the backend's repairs to every configuration the compiler dumped
// in `dump` (--iree-hal-dump-executable-configurations-to) and writes each
// repaired one to `out` as NAME.mlir, the form
// --iree-hal-substitute-executable-configurations-from reads (an existing
// file of that name, a tuned configuration, is replaced by its repair).
RepairedConfigs repair_dumped_configs(const std::filesystem::path& dump, const std::filesystem::path& out,
                                      target::Backend backend);

// Entry "tile-every-reduction" (IREE 3.13, the GPU TileAndFuse pipeline): in
// a dispatch with several reductions over the same loops (a softmax: the
// row's maximum, then its sum), the compiler configures only the last one,
// and the others are vectorized whole, a vector as long as the row. Over a
// vocabulary (50257 words) that crashes the NVPTX back end or takes ROCm's
// many minutes. The repair gives each unconfigured reduction the configured
// one's tiles.
std::optional<std::string> tile_every_reduction(const std::string& text);

}  // namespace kiln::compile
