#include "kiln/tune/space.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

// Enough workgroups to fill a data-centre GPU; fewer leave SMs idle.
constexpr double kWantedWorkgroups = 132;

double lg(double x) { return std::log2(std::max(x, 1e-9)); }

struct Dims {
  std::vector<size_t> parallel, reduction;
};

// Reduction loops are those the configuration tiles with a nonzero
// reduction size; every other loop is parallel.
Dims split_dims(const std::vector<int64_t>& reduction_tiles, size_t rank) {
  Dims d;
  for (size_t i = 0; i < rank; ++i) {
    if (i < reduction_tiles.size() && reduction_tiles[i] != 0) {
      d.reduction.push_back(i);
    } else {
      d.parallel.push_back(i);
    }
  }
  return d;
}

double occupancy_penalty(const std::vector<int64_t>& bounds, const std::vector<size_t>& parallel,
                         const std::vector<int64_t>& tiles) {
  double groups = 1;
  for (size_t i : parallel) groups *= static_cast<double>(bounds[i]) / std::max<int64_t>(1, tiles[i]);
  return groups < kWantedWorkgroups ? lg(kWantedWorkgroups / groups) : 0;
}

// Keeps the best `limit` candidates, at most `per_shape` of each workgroup
// tile shape, so that a narrow band of similar tiles cannot fill the set;
// none whose summary is in `taken` (which gains the ones kept).
std::vector<DispatchCandidate> pick(std::vector<DispatchCandidate> all, size_t limit, size_t per_shape,
                                    const std::string& shape_key, std::set<std::string>& taken) {
  std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.score < b.score; });
  std::map<std::string, size_t> seen;
  std::vector<DispatchCandidate> out;
  for (auto& c : all) {
    if (out.size() >= limit) break;
    std::string shape = field(c.root, shape_key);
    if (seen[shape] >= per_shape || taken.count(c.summary)) continue;
    taken.insert(c.summary);
    ++seen[shape];
    out.push_back(std::move(c));
  }
  return out;
}

// Separates tiles that the size terms score alike, as the H100 records
// did: a thread tile at least as tall as it is wide (8x4 beat 4x8 in most
// of round 1's pairs), and a K step of 32 over 16 (the hand-written winners').
double tie_breaks(int64_t tm, int64_t tn, int64_t kr) { return (tm < tn ? 0.05 : 0) + (kr == 16 ? 0.02 : 0); }

// What every SIMT tiling of one executable shares: its bounds, which loops
// are M, N, K (and an outer batch loop), and the compiler's own tiles.
struct SimtShape {
  const Executable& exe;
  std::vector<int64_t> wg0, th0, red0;
  Dims d;
  size_t m = 0, n = 0, r = 0, o = 0;
  bool has_outer = false;
  bool contraction = false;
  int bytes = 0;
};

struct Tile {
  int64_t wm, wn, tm, tn, wo, kr;
  bool promote;
};

// The tile, or nothing when it does not divide the loops or does not fit
// the device's limits; `threads` is the workgroup's thread count.
std::optional<DispatchCandidate> simt_tile(const SimtShape& s, const Tile& t, int64_t& threads,
                                           std::vector<int64_t>& wg) {
  const auto& b = s.exe.bounds;
  const auto& lim = s.exe.limits;
  if (b[s.m] % t.wm || b[s.n] % t.wn || t.wm % t.tm || t.wn % t.tn || t.kr > b[s.r] || b[s.r] % t.kr) return std::nullopt;
  if (t.wo > 1 && (!s.has_outer || b[s.o] % t.wo)) return std::nullopt;
  if (t.promote && !s.contraction) return std::nullopt;
  int64_t tx = t.wn / t.tn, ty = (t.wm / t.tm) * t.wo;
  threads = tx * ty;
  if (threads % lim.subgroup_size || threads < 64 || threads > std::min<int64_t>(512, lim.max_threads)) return std::nullopt;
  if (tx > lim.max_workgroup_sizes[0] || ty > lim.max_workgroup_sizes[1]) return std::nullopt;
  if (t.tm * t.tn < 2 || t.tm * t.tn > 64) return std::nullopt;
  if (t.promote && (t.wm * t.wo * t.kr + t.kr * t.wn) * s.bytes > lim.max_workgroup_memory) return std::nullopt;
  wg = s.wg0;
  auto th = s.th0, red = s.red0;
  for (size_t i : s.d.parallel) {
    wg[i] = 1;
    th[i] = 1;
  }
  wg[s.m] = t.wm, wg[s.n] = t.wn, th[s.m] = t.tm, th[s.n] = t.tn, red[s.r] = t.kr;
  if (s.has_outer) wg[s.o] = t.wo;
  DispatchCandidate c;
  c.root = s.exe.root;
  set_field(c.root, "workgroup", format_ints(wg));
  set_field(c.root, "thread", format_ints(th));
  set_field(c.root, "reduction", format_ints(red));
  set_field(c.root, "promote_operands", t.promote ? "[0, 1]" : "");
  c.workgroup_size = {tx, ty, 1};
  c.summary = describe(c.root);
  return c;
}

// The size-based ranking: workgroup and thread tile sizes, promotion, K
// step, threads, occupancy.
double size_score(const SimtShape& s, const Tile& t, int64_t threads, const std::vector<int64_t>& wg) {
  return std::abs(lg(t.wm * t.wo * t.wn) - 13) * 0.6 + std::abs(lg(t.tm * t.tn) - 4.5) * 0.5 +
         (s.contraction && !t.promote ? 1.5 : 0) + std::abs(lg(t.kr) - 4.5) * 0.4 + std::abs(lg(threads) - 7.5) * 0.4 +
         occupancy_penalty(s.exe.bounds, s.d.parallel, wg) + tie_breaks(t.tm, t.tn, t.kr);
}

// On an H100 the MLP's split-K partial products were fastest with one
// partial product per workgroup and about four workgroups per multiprocessor
// ([1,128,64,1] and [1,64,32,1], 512 workgroups each), tiles that the
// size-based ranking puts behind those spanning 2-4 partial products.
double single_score(const SimtShape& s, const Tile& t, int64_t threads, const std::vector<int64_t>& wg) {
  const auto& b = s.exe.bounds;
  double groups = 1;
  for (size_t i : s.d.parallel) groups *= static_cast<double>(b[i]) / wg[i];
  return std::abs(lg(groups) - lg(kWantedWorkgroups * 4)) * 0.6 + std::abs(lg(t.wm) - lg(t.wn)) * 0.2 +
         std::abs(lg(t.tm * t.tn) - 4.5) * 0.5 + (s.contraction && !t.promote ? 1.5 : 0) +
         std::abs(lg(t.kr) - 4.5) * 0.4 + std::abs(lg(threads) - 7.5) * 0.4 + tie_breaks(t.tm, t.tn, t.kr);
}

// Every promoted tile kept is also tried padded, in slots of its own: ranked
// right after its unpadded twin, a twin lost the slots to other unpadded tiles.
void add_padded_twins(std::vector<DispatchCandidate>& out) {
  size_t unpadded = out.size();
  for (size_t i = 0; i < unpadded; ++i) {
    if (field(out[i].root, "promote_operands").empty()) continue;
    DispatchCandidate padded = out[i];
    padded.pipeline_options = {{"no_reduce_shared_memory_bank_conflicts", "false"}};
    padded.summary += " pad-smem";
    out.push_back(std::move(padded));
  }
}

std::optional<SimtShape> simt_shape(const Executable& exe) {
  SimtShape s{exe, parse_ints(field(exe.root, "workgroup")), parse_ints(field(exe.root, "thread")),
              parse_ints(field(exe.root, "reduction"))};
  s.d = split_dims(s.red0, exe.bounds.size());
  if (s.d.parallel.size() < 2 || s.d.reduction.empty() || s.th0.size() != exe.bounds.size()) return std::nullopt;
  s.m = s.d.parallel[s.d.parallel.size() - 2], s.n = s.d.parallel.back(), s.r = s.d.reduction.back();
  s.has_outer = s.d.parallel.size() >= 3;
  s.o = s.has_outer ? s.d.parallel[s.d.parallel.size() - 3] : 0;
  s.contraction = exe.op_kind.find("matmul") != std::string::npos;
  s.bytes = element_bytes(exe.element);
  return s;
}

std::vector<DispatchCandidate> simt_candidates(const Executable& exe, size_t limit) {
  auto shape = simt_shape(exe);
  if (!shape) return {};
  const SimtShape& s = *shape;
  // On this path the compiler leaves promoted operand tiles unpadded
  // (no_reduce_shared_memory_bank_conflicts = true). Padding them trades
  // 128-bit shared-memory reads for fewer bank conflicts: on an H100 it made
  // attention's batch matmuls and the MLP's split matmuls faster and the
  // 4096^3 f32 GEMM slower, so every promoted tile is tried both ways.
  bool can_pad = exe.text.find("no_reduce_shared_memory_bank_conflicts = true") != std::string::npos;
  // `all` ranks tiles by their size and shape; `single` ranks those of a
  // batched contraction (a split-K partial product, a batch matmul) that
  // give each workgroup one batch element, by how well their workgroups
  // fill the GPU.
  std::vector<DispatchCandidate> all, single;
  for (int64_t wm : {8, 16, 32, 64, 128}) for (int64_t wn : {32, 64, 128, 256})
  for (int64_t tm : {1, 2, 4, 8}) for (int64_t tn : {1, 2, 4, 8})
  for (int64_t wo : {1, 2, 4}) for (int64_t kr : {int64_t{0}, int64_t{4}, int64_t{8}, int64_t{16}, int64_t{32}, int64_t{64}})
  for (bool promote : {true, false}) {
    // 0 stands for the compiler's own reduction tile (a small loop such as
    // a 3-channel convolution's has no other).
    Tile t{wm, wn, tm, tn, wo, kr == 0 ? s.red0[s.r] : kr, promote};
    int64_t threads = 0;
    std::vector<int64_t> wg;
    auto c = simt_tile(s, t, threads, wg);
    if (!c) continue;
    c->score = size_score(s, t, threads, wg);
    if (s.has_outer && wo == 1) {
      DispatchCandidate one = *c;
      one.score = single_score(s, t, threads, wg);
      single.push_back(std::move(one));
    }
    all.push_back(std::move(*c));
  }
  // The one-batch-element tiles have a quarter of the slots (at least two),
  // one per workgroup shape; the rest go to the size-based ranking, which
  // spreads a batched contraction's slots over shapes too (its outer tile
  // multiplies them).
  std::set<std::string> taken = {describe(exe.root)};
  std::vector<DispatchCandidate> out;
  if (s.has_outer) out = pick(std::move(single), std::min(limit, std::max<size_t>(2, limit / 4)), 1, "workgroup", taken);
  for (auto& c : pick(std::move(all), limit - out.size(), s.has_outer ? 1 : 3, "workgroup", taken)) {
    out.push_back(std::move(c));
  }
  if (can_pad) add_padded_twins(out);
  return out;
}

struct Intrinsic {
  std::string name, acc, input;
  int64_t m = 0, n = 0, k = 0;
};

// "NV_MMA_SYNC_F32_16x8x16_BF16" -> acc F32, 16x8x16, input BF16.
Intrinsic parse_intrinsic(const std::string& name) {
  Intrinsic in{name, "", "", 0, 0, 0};
  auto tokens = util::split(name, '_');
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto dims = util::split(tokens[i], 'x');
    if (dims.size() == 3 && !tokens[i].empty() && std::isdigit(static_cast<unsigned char>(tokens[i][0]))) {
      in.m = std::atoll(dims[0].c_str()), in.n = std::atoll(dims[1].c_str()), in.k = std::atoll(dims[2].c_str());
      if (i > 0) in.acc = tokens[i - 1];
      if (i + 1 < tokens.size()) in.input = tokens[i + 1];
    }
  }
  return in;
}

// A TileAndFuse MMA configuration as VectorDistribute spells it: the
// subgroup grid as a basis over the loops instead of tiles per subgroup,
// and the K step in elements instead of intrinsic steps.
std::optional<DispatchCandidate> vector_distribute_twin(const DispatchCandidate& c, size_t loops, size_t m, size_t n,
                                                        size_t r) {
  auto wg = parse_ints(field(c.root, "workgroup"));
  auto sg = parse_ints(field(c.root, "subgroup"));
  auto red = parse_ints(field(c.root, "reduction"));
  std::string kind = field(c.root, "mma_kind");
  size_t open = kind.find('<');
  if (open == std::string::npos || wg.size() != loops || sg.size() != loops || red.size() != loops) return std::nullopt;
  Intrinsic in = parse_intrinsic(kind.substr(open + 1, kind.size() - open - 2));
  if (!in.m || !in.n || !in.k || !sg[m] || !sg[n]) return std::nullopt;
  std::vector<int64_t> counts(loops, 1), order(loops);
  for (size_t i = 0; i < loops; ++i) order[i] = static_cast<int64_t>(i);
  counts[m] = wg[m] / (sg[m] * in.m);
  counts[n] = wg[n] / (sg[n] * in.n);
  red[r] *= in.k;
  DispatchCandidate twin = c;
  set_field(twin.root, "subgroup", "");
  set_field(twin.root, "subgroup_basis", "[" + format_ints(counts) + ", " + format_ints(order) + "]");
  set_field(twin.root, "reduction", format_ints(red));
  twin.pipeline = "VectorDistribute";
  twin.summary = describe(twin.root) + " vector-distribute";
  return twin;
}

std::vector<DispatchCandidate> mma_candidates(const Executable& exe, size_t limit) {
  auto wg0 = parse_ints(field(exe.root, "workgroup"));
  auto sg0 = parse_ints(field(exe.root, "subgroup"));
  auto red0 = parse_ints(field(exe.root, "reduction"));
  const auto& b = exe.bounds;
  Dims d = split_dims(red0, b.size());
  if (d.parallel.size() < 2 || d.reduction.empty() || sg0.size() != b.size()) return {};
  size_t m = d.parallel[d.parallel.size() - 2], n = d.parallel.back(), r = d.reduction.back();
  std::string kind = field(exe.root, "mma_kind");
  size_t open = kind.find('<');
  if (open == std::string::npos) return {};
  Intrinsic current = parse_intrinsic(kind.substr(open + 1, kind.size() - open - 2));
  if (!current.m || !current.n || !current.k) return {};
  std::string prefix = kind.substr(0, open + 1);
  int bytes = element_bytes(exe.element);
  const auto& lim = exe.limits;
  std::vector<Intrinsic> intrinsics;
  for (const auto& name : lim.mma) {
    Intrinsic in = parse_intrinsic(name);
    // Same accumulator and input types: the program's numerics stay as they are.
    if (in.m && in.n && in.k && in.acc == current.acc && in.input == current.input) intrinsics.push_back(in);
  }
  if (intrinsics.empty()) intrinsics.push_back(current);
  std::vector<DispatchCandidate> all;
  for (const auto& in : intrinsics)
  for (int64_t wm : {32, 64, 128, 256}) for (int64_t wn : {32, 64, 128, 256})
  for (int64_t sm : {1, 2, 4, 8}) for (int64_t sn : {1, 2, 4, 8}) for (int64_t kr : {1, 2, 4, 8}) {
    if (b[m] % wm || b[n] % wn || wm % (sm * in.m) || wn % (sn * in.n) || b[r] % (kr * in.k)) continue;
    int64_t subgroups = (wm / (sm * in.m)) * (wn / (sn * in.n));
    if (subgroups != 1 && subgroups != 2 && subgroups != 4 && subgroups != 8) continue;
    if (subgroups * lim.subgroup_size > lim.max_threads) continue;
    if ((wm + wn) * kr * in.k * bytes > lim.max_workgroup_memory) continue;
    if (sm * sn * in.m * in.n / lim.subgroup_size > 128) continue;  // accumulator registers per thread
    auto wg = wg0, sg = sg0, red = red0;
    for (size_t i : d.parallel) {
      wg[i] = 1;
      sg[i] = 0;
    }
    wg[m] = wm, wg[n] = wn, sg[m] = sm, sg[n] = sn, red[r] = kr;
    DispatchCandidate c;
    c.root = exe.root;
    set_field(c.root, "mma_kind", prefix + in.name + ">");
    set_field(c.root, "workgroup", format_ints(wg));
    set_field(c.root, "subgroup", format_ints(sg));
    set_field(c.root, "reduction", format_ints(red));
    c.workgroup_size = {subgroups * lim.subgroup_size, 1, 1};
    c.summary = describe(c.root);
    c.score = std::abs(lg(wm * wn) - 14) * 0.5 + std::abs(lg(subgroups) - 2) * 0.5 + std::abs(lg(kr * in.k) - 6) * 0.4 +
              std::abs(lg(sm * sn) - 4) * 0.3 + occupancy_penalty(b, d.parallel, wg);
    all.push_back(std::move(c));
  }
  std::set<std::string> taken = {describe(exe.root)};
  auto out = pick(std::move(all), limit, 3, "workgroup", taken);
  // The same tiles under the VectorDistribute pipeline, in slots of their
  // own: it reads the operands from shared memory in fewer instructions,
  // and which pipeline wins depends on the tile.
  size_t tiles = out.size();
  for (size_t i = 0; i < tiles; ++i) {
    if (auto twin = vector_distribute_twin(out[i], b.size(), m, n, r)) out.push_back(std::move(*twin));
  }
  return out;
}

std::vector<DispatchCandidate> cpu_candidates(const Executable& exe, size_t limit) {
  auto dist0 = parse_ints(field(exe.root, "distribution"));
  auto vec0 = parse_ints(field(exe.root, "vector_common_parallel"));
  auto vred0 = parse_ints(field(exe.root, "vector_reduction"));
  const auto& b = exe.bounds;
  Dims d = split_dims(vred0, b.size());
  std::vector<size_t> tiled;
  for (size_t i : d.parallel) {
    if (i < dist0.size() && dist0[i] != 0) tiled.push_back(i);
  }
  if (tiled.size() < 2 || vec0.size() != b.size()) return {};
  size_t m = tiled[tiled.size() - 2], n = tiled.back();
  std::vector<DispatchCandidate> all;
  for (int64_t dm : {4, 8, 16, 32, 64, 128, 256}) for (int64_t dn : {8, 16, 32, 64, 128, 256}) for (int64_t vm : {4, 8, 16}) {
    if (vec0[n] <= 0 || dm > b[m] || dn > b[n] || dm % vm || dn % vec0[n]) continue;
    auto dist = dist0, vec = vec0;
    dist[m] = dm, dist[n] = dn, vec[m] = vm;
    DispatchCandidate c;
    c.root = exe.root;
    set_field(c.root, "distribution", format_ints(dist));
    if (!field(c.root, "cache_parallel").empty()) set_field(c.root, "cache_parallel", format_ints(dist));
    set_field(c.root, "vector_common_parallel", format_ints(vec));
    c.summary = describe(c.root);
    c.score = std::abs(lg(dm * dn) - lg(dist0[m] * dist0[n])) * 0.5 + std::abs(lg(vm) - lg(vec0[m])) * 0.7;
    all.push_back(std::move(c));
  }
  std::set<std::string> taken = {describe(exe.root)};
  return pick(std::move(all), limit, 2, "distribution", taken);
}

}  // namespace

std::vector<std::vector<size_t>> combinations(const std::vector<size_t>& counts) {
  size_t all = 1;
  for (size_t c : counts) all *= c;
  std::vector<std::vector<size_t>> out;
  if (all == 0) return out;
  if (all <= 9) {
    for (size_t n = 0; n < all; ++n) {
      std::vector<size_t> combo;
      for (size_t i = 0, rest = n; i < counts.size(); rest /= counts[i], ++i) combo.push_back(rest % counts[i]);
      out.push_back(std::move(combo));
    }
    return out;
  }
  out.emplace_back(counts.size(), 0);
  for (size_t i = 0; i < counts.size(); ++i) {
    for (size_t k = 1; k < counts[i]; ++k) {
      out.emplace_back(counts.size(), 0);
      out.back()[i] = k;
    }
  }
  return out;
}

int element_bytes(const std::string& element) {
  std::string first = util::split(element, 'x').front();
  if (first == "f16" || first == "bf16" || first == "i16") return 2;
  if (first == "i8" || util::starts_with(first, "f8")) return 1;
  if (first == "f64" || first == "i64") return 8;
  return 4;
}

std::vector<DispatchCandidate> dispatch_candidates(const Executable& exe, size_t limit) {
  switch (exe.family) {
    case Family::kGpuSimt: return simt_candidates(exe, limit);
    case Family::kGpuMma: return mma_candidates(exe, limit);
    case Family::kCpuTiling: return cpu_candidates(exe, limit);
    case Family::kNone: break;
  }
  return {};
}

std::vector<OptionSet> program_option_sets(target::Backend backend) {
  using target::Backend;
  std::vector<OptionSet> sets = {{"defaults", {}}, {"O3", {"--iree-opt-level=O3"}}};
  if (backend == Backend::kCuda || backend == Backend::kRocm) {
    sets.push_back({"O3+aggressive-fusion", {"--iree-opt-level=O3", "--iree-dispatch-creation-enable-aggressive-fusion"}});
    sets.push_back({"tile-and-fuse-vectorize", {"--iree-codegen-llvmgpu-test-tile-and-fuse-vectorize"}});
  }
  if (backend == Backend::kCpu) {
    sets.push_back({"O3+ukernels", {"--iree-opt-level=O3", "--iree-llvmcpu-enable-ukernels=all"}});
  }
  return sets;
}

std::vector<OptionSet> reshaping_option_sets(target::Backend backend, const std::vector<Executable>& executables) {
  if (backend != target::Backend::kCuda && backend != target::Backend::kRocm) return {};
  // A contraction with fewer 128x128 output tiles than the GPU has
  // multiprocessors times four, and a reduction long enough to split four
  // ways into chunks of at least 256: the MLP's 256x1024x4096 matmul (16
  // tiles) is one; a 4096^3 GEMM (1024 tiles) or attention's 512-long
  // products are not.
  bool wanted = false;
  for (const auto& exe : executables) {
    if (exe.family != Family::kGpuSimt && exe.family != Family::kGpuMma) continue;
    if (exe.op_kind.find("matmul") == std::string::npos) continue;
    auto red = parse_ints(field(exe.root, "reduction"));
    Dims d = split_dims(red, exe.bounds.size());
    if (d.reduction.size() != 1 || d.parallel.empty()) continue;
    double outputs = 1;
    for (size_t i : d.parallel) outputs *= static_cast<double>(exe.bounds[i]);
    int64_t k = exe.bounds[d.reduction.front()];
    if (outputs / (128.0 * 128.0) < kWantedWorkgroups * 4 && k >= 1024) wanted = true;
  }
  std::vector<OptionSet> sets;
  if (wanted) {
    for (int split : {4, 8}) {
      sets.push_back({"splitK" + std::to_string(split),
                      {"--iree-dispatch-creation-split-matmul-reduction=" + std::to_string(split)}});
    }
  }
  bool tensor_cores = std::any_of(executables.begin(), executables.end(), [](const Executable& exe) {
    return exe.family == Family::kGpuMma && exe.op_kind.find("matmul") != std::string::npos;
  });
  if (tensor_cores) {
    // The compiler folds a transpose into the matmul that reads it unless
    // transposes stay where they are.
    sets.push_back({"rhs-k-major",
                    {"--iree-preprocessing-pass-pipeline=builtin.module(util.func(iree-preprocessing-transpose-matmul-pass{input=rhs}))",
                     "--iree-global-opt-propagate-transposes=false"}});
  }
  return sets;
}

std::vector<OptionSet> runtime_option_sets(const std::string& device) {
  std::vector<OptionSet> sets = {{"defaults", {}}, {"caching", {"--device_allocator=caching"}}};
  std::string driver = device.substr(0, device.find(':'));
  if (driver == "cuda" || driver == "hip") {
    std::vector<std::string> base = {"--device_allocator=caching", "--" + driver + "_async_allocations=false"};
    sets.push_back({"caching+sync-alloc", base});
    auto graphs = base;
    graphs.push_back("--" + driver + "_use_streams=false");
    sets.push_back({"caching+sync-alloc+graphs", graphs});
    auto inl = base;
    inl.push_back("--" + driver + "_allow_inline_execution=true");
    sets.push_back({"caching+sync-alloc+inline", inl});
  }
  return sets;
}

}  // namespace kiln::tune
