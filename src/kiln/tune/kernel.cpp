#include "kiln/tune/kernel.h"

#include <cctype>
#include <map>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

struct PtxVariant {
  const char* input;   // "bf16", "f16"
  const char* output;  // "f32", or "same": the input type
  int bindings;        // kernel parameters
  int shape;           // KILN_GEMM_SHAPE in gemm_mma.cu: 0 small, 1 deep, 2 wide; 3 gemm_wgmma.cu
  int threads;         // the block size it is built for
  int sm;              // the oldest GPU that runs it: 80, or 90 (Hopper only: sm_90a)
  const char* text;
};

constexpr PtxVariant kVariants[] = {
#include "kiln/kernels/gemm_ptx.inc"
    {"", "", 0, 0, 0, 0, nullptr},  // end
};

constexpr int64_t kTileM = 128, kTileN = 128, kTileK = 32;  // the smallest tiles of every variant
constexpr int64_t kWideN = 256;   // the wide variant's N tile
constexpr int64_t kConfigK = 128;  // the K tile of the configurations kiln writes for the dynamic variants
constexpr int kHopperShape = 3;    // gemm_wgmma.cu's variants
// The Hopper kernel's tiles (128 x 256 x 64) and the workgroup tile of the
// configuration it runs under (64 x 512 x 128, 256 threads), for which the
// compiler gives the launch 148992 bytes of dynamic shared memory: three of
// the kernel's 48 KiB stages and their barriers.
constexpr int64_t kHopperM = 128, kHopperN = 512;

// One hal.interface.binding.subspan of the dispatch.
struct Subspan {
  int64_t binding = 0;
  int64_t offset = 0;
  bool read_only = false;
  std::vector<int64_t> shape;
  std::string element;
  std::string layout;  // the memref's layout: "strided<[N, 1], offset: ?>, ..." or ""
};

int64_t to_int(const std::string& s) { return std::strtoll(s.c_str(), nullptr, 10); }

std::vector<int64_t> dims_of(const std::string& text) {
  std::vector<int64_t> dims;
  for (const auto& d : util::split(text, 'x')) dims.push_back(to_int(d));
  return dims;
}

int count(const std::string& text, const std::string& word) {
  int n = 0;
  for (size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + word.size())) ++n;
  return n;
}


// The SSA name ("%12", "%c0") that starts at `at`, or "".
std::string ssa_at(std::string_view text, size_t at) {
  if (at >= text.size() || text[at] != '%') return "";
  size_t end = at + 1;
  while (end < text.size() && util::is_word_char(text[end])) ++end;
  return std::string(text.substr(at, end - at));
}

// What stands between `open` (included in the search) and the next `close`
// after it, or "" when either is missing.
std::string between(std::string_view line, std::string_view open, char close) {
  size_t at = line.find(open);
  if (at == std::string_view::npos) return "";
  at += open.size();
  size_t end = line.find(close, at);
  return end == std::string_view::npos ? "" : std::string(line.substr(at, end - at));
}

// The operations the dispatch's function may hold, each at most so often:
// one contraction (generic or named), an optional rounding epilogue, the
// fill of the accumulator and the element conversions. The text is the
// compiler's output for the user's program: it is scanned, never matched
// with std::regex (which recurses per character).
Status check_ops(const std::string& body) {
  static const std::map<std::string, int> allowed = {
      {"arith.constant", 1 << 20}, {"arith.extf", 2}, {"arith.mulf", 1}, {"arith.addf", 1}, {"arith.truncf", 1},
      {"linalg.fill", 1}, {"linalg.generic", 2}, {"linalg.matmul", 1}, {"linalg.yield", 2}, {"tensor.empty", 2}};
  std::map<std::string, int> seen;
  for (std::string dialect : {"arith.", "math.", "linalg.", "tensor.", "scf.", "iree_linalg_ext."}) {
    for (size_t at = body.find(dialect); at != std::string::npos; at = body.find(dialect, at + 1)) {
      if (at > 0 && util::is_word_char(body[at - 1])) continue;
      size_t end = at + dialect.size();
      while (end < body.size() && (std::islower(static_cast<unsigned char>(body[end])) || body[end] == '_')) ++end;
      if (end == at + dialect.size()) continue;
      std::string name = body.substr(at, end - at);
      auto a = allowed.find(name);
      if (a == allowed.end()) return fail(Code::kInvalidArgument, "it computes more than a matmul (" + name + ")");
      if (++seen[name] > a->second) return fail(Code::kInvalidArgument, "it computes more than a matmul (" + name + " again)");
    }
  }
  return {};
}

// "%c0 = arith.constant 0 : index" -> {"%c0", 0}.
std::optional<std::pair<std::string, int64_t>> index_constant(std::string_view line) {
  size_t eq = line.find(" = arith.constant ");
  if (eq == std::string_view::npos || !util::trim(line).ends_with(" : index")) return std::nullopt;
  std::string name = ssa_at(line, line.find('%'));
  if (name.empty()) return std::nullopt;
  return std::make_pair(name, to_int(std::string(line.substr(eq + 18))));
}

// One subspan line: "%0 = hal.interface.binding.subspan ... binding(0) ...
// offset(%c0) flags(...) : memref<4096x4096xbf16, strided<[4096, 1], ...>, ...>".
std::optional<Subspan> subspan_of(std::string_view line, const std::map<std::string, int64_t>& constants) {
  Subspan s;
  std::string binding = between(line, ") binding(", ')');
  auto offset = constants.find(between(line, " offset(", ')'));
  std::string type = between(line, ": memref<", '#');
  if (binding.empty() || offset == constants.end() || type.empty()) return std::nullopt;
  s.binding = to_int(binding);
  s.offset = offset->second;
  s.read_only = between(line, " flags(", ')').find("ReadOnly") != std::string::npos;
  std::string shape = type.substr(0, type.find(','));
  size_t strided = type.find("strided<");
  s.layout = strided == std::string::npos ? "" : type.substr(strided);
  size_t x = shape.rfind('x');
  if (x == std::string::npos) return std::nullopt;
  s.shape = dims_of(shape.substr(0, x));
  s.element = shape.substr(x + 1);
  return s;
}

struct Operands {
  Subspan a, b, c;
};

// The dispatch's function, line by line: its bindings, what is loaded from
// them, the contraction's two inputs and the one store.
struct Body {
  std::map<std::string, Subspan> spans;   // SSA name -> binding
  std::map<std::string, std::string> loads;  // tensor -> the subspan it was loaded from
  std::string lhs, rhs, stored;
  int stores = 0;
  bool transposed = false;
};

Result<Body> read_body(const std::string& text) {
  static const std::string kGeneric =
      "linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d2)>, affine_map<(d0, d1, d2) -> (d2, d1)>, "
      "affine_map<(d0, d1, d2) -> (d0, d1)>], iterator_types = [\"parallel\", \"parallel\", \"reduction\"]}";
  auto lines = util::split(text, '\n');
  std::map<std::string, int64_t> constants;
  for (const auto& line : lines) {
    if (auto c = index_constant(line)) constants.insert(*c);
  }
  Body b;
  for (const auto& line : lines) {
    std::string name = ssa_at(line, line.find('%'));
    if (line.find(" = hal.interface.binding.subspan ") != std::string::npos) {
      auto s = subspan_of(line, constants);
      if (!s) return fail(Code::kInvalidArgument, "a binding's offset is not a constant");
      b.spans[name] = *s;
    } else if (size_t at = line.find(" = iree_codegen.load_from_buffer "); at != std::string::npos) {
      b.loads[name] = ssa_at(line, at + 33);
    } else if (size_t at = line.find("iree_codegen.store_to_buffer "); at != std::string::npos) {
      ++b.stores;
      size_t comma = line.find(", ", at);
      if (comma != std::string::npos) b.stored = ssa_at(line, comma + 2);
    } else if (line.find(kGeneric) != std::string::npos || line.find("linalg.matmul ") != std::string::npos) {
      b.transposed = b.transposed || (line.find("linalg.matmul ") != std::string::npos && line.find("indexing_maps") != std::string::npos);
      size_t ins = line.find(" ins(");
      if (ins == std::string::npos) continue;
      b.lhs = ssa_at(line, ins + 5);
      size_t comma = line.find(", ", ins);
      if (comma != std::string::npos) b.rhs = ssa_at(line, comma + 2);
    }
  }
  return b;
}

Result<Operands> operands(const std::string& text) {
  Body b = KILN_TRY(read_body(text));
  if (b.transposed || b.lhs.empty() || b.rhs.empty()) return fail(Code::kInvalidArgument, "its contraction is not a row-major A x B");
  auto span = [&](const std::string& tensor) -> const Subspan* {
    auto load = b.loads.find(tensor);
    if (load == b.loads.end()) return nullptr;
    auto s = b.spans.find(load->second);
    return s == b.spans.end() ? nullptr : &s->second;
  };
  const Subspan* a = span(b.lhs);
  const Subspan* rhs = span(b.rhs);
  if (!a || !rhs) return fail(Code::kInvalidArgument, "its operands are not read straight from bindings");
  if (b.stores != 1 || !b.spans.count(b.stored)) return fail(Code::kInvalidArgument, "it does not write one result straight to a binding");
  return Operands{*a, *rhs, b.spans.at(b.stored)};
}

bool row_major(const Subspan& s) {
  if (s.layout.empty()) return true;
  return s.layout.find(fmt::format("strided<[{}, 1]", s.shape.size() == 2 ? s.shape[1] : -1)) != std::string::npos;
}

Status check_shapes(const Operands& o, const std::vector<int64_t>& bounds) {
  const int64_t m = bounds[0], n = bounds[1], k = bounds[2];
  if (o.a.shape != std::vector<int64_t>{m, k} || o.b.shape != std::vector<int64_t>{k, n} ||
      o.c.shape != std::vector<int64_t>{m, n}) {
    return fail(Code::kInvalidArgument, "its operands' shapes are not M x K, K x N and M x N");
  }
  if (!row_major(o.a) || !row_major(o.b) || !row_major(o.c)) return fail(Code::kInvalidArgument, "an operand is not dense row-major");
  if (m % kTileM || n % kTileN || k % kTileK) {
    return fail(Code::kInvalidArgument, fmt::format("{}x{}x{} is not a multiple of the kernel's {}x{}x{} tiles", m, n, k,
                                                    kTileM, kTileN, kTileK));
  }
  for (const auto* s : {&o.a, &o.b, &o.c}) {
    if (s->offset % 16) return fail(Code::kInvalidArgument, "an operand's offset is not 16-byte aligned");
  }
  if (!o.a.read_only || !o.b.read_only || o.c.read_only) return fail(Code::kInvalidArgument, "its bindings are not read, read, write");
  return {};
}

const PtxVariant* variant(const std::string& input, const std::string& output, int bindings, int shape) {
  for (const auto& v : kVariants) {
    if (v.text && input == v.input && output == v.output && bindings == v.bindings && shape == v.shape) return &v;
  }
  return nullptr;
}

// The configuration a dynamic variant runs under: the compiler's MMA
// configuration with another workgroup tile (K 128) and subgroup tile, whose
// promoted operands make the launch carry (M + N) x 128 x 2 bytes of shared
// memory and a bit. For the mma.sync variants, an M x N tile over subgroups
// of 64 x 64: two of the kernel's 64-deep stages.
Fields dynamic_root(const Executable& exe, int64_t tile_m, int64_t tile_n, const std::vector<int64_t>& subgroup) {
  Fields root = exe.root;
  set_field(root, "workgroup", format_ints({tile_m, tile_n, 0}));
  set_field(root, "subgroup", format_ints(subgroup));
  set_field(root, "reduction", format_ints({0, 0, kConfigK / 16}));  // MMA steps of K = 16
  return root;
}

// The variant's PTX named after the dispatch's export, with the shape and
// operand places written into `kiln_args`' initializer.
Result<std::string> instantiate(const PtxVariant& v, const std::string& function, const Operands& o,
                                const std::vector<int64_t>& bounds) {
  std::string ptx = v.text;
  static const std::string kArgs = ".global .align 8 .b8 kiln_args[72] = {";
  size_t at = ptx.find(kArgs);
  size_t end = at == std::string::npos ? at : ptx.find("};", at);
  if (end == std::string::npos) return fail(Code::kInternal, "kiln's kernel PTX has no kiln_args to write");
  ptx.replace(at, end + 2 - at,
              fmt::format(".global .align 8 .u64 kiln_args[9] = {{{}, {}, {}, {}, {}, {}, {}, {}, {}}};", bounds[0], bounds[1],
                          bounds[2], o.a.binding, o.a.offset, o.b.binding, o.b.offset, o.c.binding, o.c.offset));
  // The entry and its parameters (kiln_gemm, kiln_gemm_param_N) take the export's name.
  static const std::string kEntry = "kiln_gemm";
  std::string out;
  size_t from = 0;
  for (size_t hit = ptx.find(kEntry); hit != std::string::npos; hit = ptx.find(kEntry, hit + kEntry.size())) {
    size_t after = hit + kEntry.size();
    bool whole = (hit == 0 || !util::is_word_char(ptx[hit - 1])) &&
                 (after == ptx.size() || !util::is_word_char(ptx[after]) || ptx.compare(after, 7, "_param_") == 0);
    if (!whole) continue;
    out.append(ptx, from, hit - from).append(function);
    from = after;
  }
  return out.append(ptx, from, std::string::npos);
}

// The variants this dispatch can take, each instantiated for it; the
// Hopper kernel only where the target is one (`hopper`).
Result<std::vector<KernelChoice>> choices_for(const Executable& exe, const std::string& input, const std::string& output,
                                              int bindings, const Operands& o, bool hopper) {
  std::string result = output == "f32" ? "f32" : input;
  std::string types = input + " -> " + result;
  const bool mma = exe.family == Family::kGpuMma && exe.bounds[2] % kConfigK == 0;
  struct Shape {
    int shape;
    bool fits;
    std::string id, tiles;
    std::vector<int64_t> workgroup_size;
    Fields root;
  };
  // The Hopper kernel's 64 x 512 configuration (8 subgroups of 64 x 64 for
  // its 256 threads) needs M in its 128-row tiles and N in 512 columns.
  const bool wgmma = hopper && mma && exe.bounds[0] % kHopperM == 0 && exe.bounds[1] % kHopperN == 0;
  const Shape shapes[] = {
      {0, true, "kernel", "128x128x32 tiles, 3 stages", {128, 1, 1}, {}},
      {1, mma, "kernel-k64", "128x128x64 tiles, 2 stages", {128, 1, 1}, dynamic_root(exe, kTileM, kTileN, {4, 8, 0})},
      {2, mma && exe.bounds[1] % kWideN == 0, "kernel-wide", "128x256x64 tiles, 2 stages", {256, 1, 1},
       dynamic_root(exe, kTileM, kWideN, {4, 8, 0})},
      {kHopperShape, wgmma, "kernel-wgmma", "128x256x64 tiles, wgmma (sm_90a), 3 stages", {256, 1, 1},
       dynamic_root(exe, kHopperM / 2, kHopperN, {4, 8, 0})},
  };
  std::vector<KernelChoice> choices;
  for (const auto& s : shapes) {
    const PtxVariant* v = s.fits ? variant(input, output, bindings, s.shape) : nullptr;
    if (!v) continue;
    choices.push_back({s.id, "kiln kernel: " + types + ", " + s.tiles, KILN_TRY(instantiate(*v, exe.function, o, exe.bounds)),
                       s.workgroup_size, s.root});
  }
  if (choices.empty()) return fail(Code::kInvalidArgument, fmt::format("no kernel variant takes {} bindings", bindings));
  return choices;
}

}  // namespace

bool kernels_available() { return kVariants[0].text != nullptr; }

bool hopper_kernels_available() {
  for (const auto& v : kVariants) {
    if (v.text && v.sm == 90) return true;
  }
  return false;
}

Result<std::vector<KernelChoice>> kernels_for(const Executable& exe, const std::string& arch) {
  if (!kernels_available()) return fail(Code::kFailedPrecondition, "this kiln was built without nvcc, so without its kernels");
  if (exe.text.find("target(<\"cuda\"") == std::string::npos) return fail(Code::kInvalidArgument, "not a CUDA dispatch");
  if (exe.op_kind != "matmul" || exe.bounds.size() != 3) return fail(Code::kInvalidArgument, "not a plain matmul");
  auto types = util::split(exe.element, 'x');
  if (types.size() != 3 || types[0] != types[1] || (types[0] != "bf16" && types[0] != "f16") || types[2] != "f32") {
    return fail(Code::kInvalidArgument, "its element types are " + exe.element + ", not bf16 or f16 inputs with f32 accumulation");
  }
  size_t export_at = exe.text.find("hal.executable.export");
  size_t body_at = exe.text.find("func.func @" + exe.function);
  if (export_at == std::string::npos || body_at == std::string::npos) return fail(Code::kInvalidArgument, "no export or function");
  std::string layout = exe.text.substr(export_at, exe.text.find('\n', export_at) - export_at);
  if (layout.find("constants =") != std::string::npos) return fail(Code::kInvalidArgument, "it takes push constants");
  int bindings = count(layout, "#hal.pipeline.binding<");
  std::string body = exe.text.substr(body_at, exe.text.find("iree_codegen.dispatch_config", body_at) - body_at);
  KILN_TRY_STATUS(check_ops(body));
  auto o = KILN_TRY(operands(body));
  KILN_TRY_STATUS(check_shapes(o, exe.bounds));
  if (o.a.element != types[0] || o.b.element != types[0]) return fail(Code::kInvalidArgument, "its operands are converted inside the dispatch");
  bool rounds = count(body, "arith.truncf") == 1;
  if (rounds && body.find("indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, affine_map<(d0, d1) -> (d0, d1)>]") ==
                    std::string::npos) {
    return fail(Code::kInvalidArgument, "its rounding epilogue is not element-wise");
  }
  std::string output = o.c.element == "f32" && !rounds ? "f32" : o.c.element == types[0] && rounds ? "same" : "";
  if (output.empty()) return fail(Code::kInvalidArgument, "its result is " + o.c.element + ", which the kernel does not write");
  return choices_for(exe, types[0], output, bindings, o, arch == "sm_90" || arch == "sm_90a");
}

}  // namespace kiln::tune
