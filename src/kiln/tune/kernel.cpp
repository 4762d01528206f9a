#include "kiln/tune/kernel.h"

#include <map>
#include <optional>
#include <regex>

#include <fmt/format.h>

#include "kiln/util/strings.h"

namespace kiln::tune {
namespace {

struct PtxVariant {
  const char* input;   // "bf16", "f16"
  const char* output;  // "f32", or "same": the input type
  int bindings;        // kernel parameters
  int shape;           // KILN_GEMM_SHAPE in gemm_mma.cu: 0 small, 1 deep, 2 wide
  int threads;         // the block size it is built for
  const char* text;
};

constexpr PtxVariant kVariants[] = {
#include "kiln/kernels/gemm_ptx.inc"
    {"", "", 0, 0, 0, nullptr},  // end
};

constexpr int64_t kTileM = 128, kTileN = 128, kTileK = 32;  // the smallest tiles of every variant
constexpr int64_t kWideN = 256;   // the wide variant's N tile
constexpr int64_t kConfigK = 128;  // the K tile of the configurations kiln writes for the dynamic variants

// One hal.interface.binding.subspan of the dispatch.
struct Subspan {
  int64_t binding = 0;
  int64_t offset = 0;
  bool read_only = false;
  std::vector<int64_t> shape;
  std::string element;
  std::string layout;  // what follows the element type in the memref: ", strided<[N, 1], offset: ?>" or ""
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

// The operations the dispatch's function may hold, each at most so often:
// one contraction (generic or named), an optional rounding epilogue, the
// fill of the accumulator and the element conversions.
Status check_ops(const std::string& body) {
  static const std::regex op(R"(\b(arith|math|linalg|tensor|scf|iree_linalg_ext)\.([a-z_]+))");
  static const std::map<std::string, int> allowed = {
      {"arith.constant", 1 << 20}, {"arith.extf", 2}, {"arith.mulf", 1}, {"arith.addf", 1}, {"arith.truncf", 1},
      {"linalg.fill", 1}, {"linalg.generic", 2}, {"linalg.matmul", 1}, {"linalg.yield", 2}, {"tensor.empty", 2}};
  std::map<std::string, int> seen;
  for (std::sregex_iterator it(body.begin(), body.end(), op), end; it != end; ++it) {
    std::string name = (*it)[1].str() + "." + (*it)[2].str();
    auto a = allowed.find(name);
    if (a == allowed.end()) return fail(Code::kInvalidArgument, "it computes more than a matmul (" + name + ")");
    if (++seen[name] > a->second) return fail(Code::kInvalidArgument, "it computes more than a matmul (" + name + " again)");
  }
  return {};
}

Result<std::map<std::string, Subspan>> subspans(const std::string& body) {
  static const std::regex constant(R"((%[\w]+) = arith\.constant (-?\d+) : index)");
  static const std::regex subspan(
      R"re((%[\w]+) = hal\.interface\.binding\.subspan .*? binding\((\d+)\) alignment\(\d+\) offset\((%[\w]+)\) flags\(([^)]*)\) : memref<([0-9x]+)x(bf16|f16|f32|[a-z0-9]+)([^,>]*(?:, strided<\[[^\]]*\][^>]*>)?))re");
  std::map<std::string, int64_t> constants;
  for (std::sregex_iterator it(body.begin(), body.end(), constant), end; it != end; ++it) {
    constants[(*it)[1].str()] = to_int((*it)[2].str());
  }
  std::map<std::string, Subspan> out;
  for (std::sregex_iterator it(body.begin(), body.end(), subspan), end; it != end; ++it) {
    const auto& m = *it;
    auto offset = constants.find(m[3].str());
    if (offset == constants.end()) return fail(Code::kInvalidArgument, "a binding's offset is not a constant");
    out[m[1].str()] = {to_int(m[2].str()), offset->second, m[4].str().find("ReadOnly") != std::string::npos,
                       dims_of(m[5].str()), m[6].str(), m[7].str()};
  }
  return out;
}

// The subspan a tensor value was loaded from.
std::optional<Subspan> loaded(const std::string& body, const std::map<std::string, Subspan>& spans, const std::string& value) {
  std::regex load(value + R"( = iree_codegen\.load_from_buffer (%[\w]+))");
  std::smatch m;
  if (!std::regex_search(body, m, load)) return std::nullopt;
  auto it = spans.find(m[1].str());
  if (it == spans.end()) return std::nullopt;
  return it->second;
}

struct Operands {
  Subspan a, b, c;
};

Result<Operands> operands(const std::string& body) {
  auto spans = KILN_TRY(subspans(body));
  static const std::regex generic(
      R"(linalg\.generic \{indexing_maps = \[affine_map<\(d0, d1, d2\) -> \(d0, d2\)>, affine_map<\(d0, d1, d2\) -> \(d2, d1\)>, affine_map<\(d0, d1, d2\) -> \(d0, d1\)>\], iterator_types = \["parallel", "parallel", "reduction"\]\} ins\((%[\w]+), (%[\w]+) :)");
  static const std::regex named(R"(linalg\.matmul (?:\{[^}]*\}>?\} )?ins\((%[\w]+), (%[\w]+) :)");
  static const std::regex store(R"(iree_codegen\.store_to_buffer %[\w]+, (%[\w]+) :)");
  std::smatch m, s;
  size_t named_at = body.find("linalg.matmul");
  bool transposed = named_at != std::string::npos &&
                    body.substr(named_at, body.find('\n', named_at) - named_at).find("indexing_maps") != std::string::npos;
  if (transposed || (!std::regex_search(body, m, generic) && !std::regex_search(body, m, named))) {
    return fail(Code::kInvalidArgument, "its contraction is not a row-major A x B");
  }
  auto a = loaded(body, spans, m[1].str());
  auto b = loaded(body, spans, m[2].str());
  if (!a || !b) return fail(Code::kInvalidArgument, "its operands are not read straight from bindings");
  if (!std::regex_search(body, s, store) || count(body, "iree_codegen.store_to_buffer") != 1 || !spans.count(s[1].str())) {
    return fail(Code::kInvalidArgument, "it does not write one result straight to a binding");
  }
  return Operands{*a, *b, spans.at(s[1].str())};
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
// configuration with an M x N x 128 workgroup tile over subgroups of 64 x
// 64, whose promoted operands make the launch carry (M + N) x 128 x 2 bytes
// of shared memory and a bit: two of the kernel's 64-deep stages.
Fields dynamic_root(const Executable& exe, int64_t tile_n) {
  Fields root = exe.root;
  set_field(root, "workgroup", format_ints({kTileM, tile_n, 0}));
  set_field(root, "subgroup", format_ints({4, 8, 0}));
  set_field(root, "reduction", format_ints({0, 0, kConfigK / 16}));  // MMA steps of K = 16
  return root;
}

// The variant's PTX named after the dispatch's export, with the shape and
// operand places written into `kiln_args`' initializer.
Result<std::string> instantiate(const PtxVariant& v, const std::string& function, const Operands& o,
                                const std::vector<int64_t>& bounds) {
  std::string ptx = v.text;
  static const std::regex args(R"(\.global \.align 8 \.b8 kiln_args\[72\] = \{[^}]*\};)");
  std::string values = fmt::format(".global .align 8 .u64 kiln_args[9] = {{{}, {}, {}, {}, {}, {}, {}, {}, {}}};", bounds[0],
                                   bounds[1], bounds[2], o.a.binding, o.a.offset, o.b.binding, o.b.offset, o.c.binding,
                                   o.c.offset);
  if (!std::regex_search(ptx, args)) return fail(Code::kInternal, "kiln's kernel PTX has no kiln_args to write");
  ptx = std::regex_replace(ptx, args, values, std::regex_constants::format_first_only);
  static const std::regex entry(R"(\bkiln_gemm(_param_\d+)?\b)");
  return std::regex_replace(ptx, entry, function + "$1");
}

// The variants this dispatch can take, each instantiated for it.
Result<std::vector<KernelChoice>> choices_for(const Executable& exe, const std::string& input, const std::string& output,
                                              int bindings, const Operands& o) {
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
  const Shape shapes[] = {
      {0, true, "kernel", "128x128x32 tiles, 3 stages", {128, 1, 1}, {}},
      {1, mma, "kernel-k64", "128x128x64 tiles, 2 stages", {128, 1, 1}, dynamic_root(exe, kTileN)},
      {2, mma && exe.bounds[1] % kWideN == 0, "kernel-wide", "128x256x64 tiles, 2 stages", {256, 1, 1},
       dynamic_root(exe, kWideN)},
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

Result<std::vector<KernelChoice>> kernels_for(const Executable& exe) {
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
  return choices_for(exe, types[0], output, bindings, o);
}

}  // namespace kiln::tune
