#include "kiln/mlir/jax_serialized.h"

#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "kiln/mlir/inspect.h"
#include "kiln/util/strings.h"

namespace kiln::mlir {
namespace {

// Field ids of the Exported table (serialization.fbs), and of AbstractValue.
enum ExportedField : int {
  kSerializationVersion = 0,
  kFunctionName = 1,
  kInAvals = 3,
  kOutAvals = 5,
  kPlatforms = 9,
  kModule = 13,
  kCallingConventionVersion = 14,
  kUniqueAvals = 19,
  kInAvalsIdxs = 22,
  kOutAvalsIdxs = 23,
};
enum AvalField : int { kAvalShape = 1, kAvalDtype = 2 };

// A bounds-checked view of a FlatBuffer. Every read says whether it fit.
class Buffer {
 public:
  explicit Buffer(std::string_view bytes) : b_(bytes) {}

  template <typename T>
  std::optional<T> read(size_t pos) const {
    if (pos > b_.size() || b_.size() - pos < sizeof(T)) return std::nullopt;
    T v;
    std::memcpy(&v, b_.data() + pos, sizeof(T));  // FlatBuffers are little-endian, as is every host kiln builds for
    return v;
  }

  // Where field `id` of the table at `table` is, or nullopt when absent.
  std::optional<size_t> field(size_t table, int id) const {
    auto soffset = read<int32_t>(table);
    if (!soffset) return std::nullopt;
    int64_t vtable = static_cast<int64_t>(table) - *soffset;
    if (vtable < 0) return std::nullopt;
    auto vsize = read<uint16_t>(static_cast<size_t>(vtable));
    size_t slot = 4 + 2 * static_cast<size_t>(id);
    if (!vsize || slot + 2 > *vsize) return std::nullopt;
    auto off = read<uint16_t>(static_cast<size_t>(vtable) + slot);
    if (!off || *off == 0) return std::nullopt;
    return table + *off;
  }

  // Follows the uoffset stored at `pos`.
  std::optional<size_t> deref(size_t pos) const {
    auto off = read<uint32_t>(pos);
    if (!off || *off > b_.size() - pos) return std::nullopt;
    return pos + *off;
  }

  std::optional<std::string_view> string(size_t pos) const {
    auto len = read<uint32_t>(pos);
    if (!len || *len > b_.size() - pos - 4) return std::nullopt;
    return b_.substr(pos + 4, *len);
  }

  // A vector at `pos`: its length, elements from pos + 4.
  std::optional<uint32_t> length(size_t pos, size_t element_size) const {
    auto len = read<uint32_t>(pos);
    if (!len || static_cast<uint64_t>(*len) * element_size > b_.size() - pos - 4) return std::nullopt;
    return len;
  }

  size_t size() const { return b_.size(); }

 private:
  std::string_view b_;
};

Result<std::string> fail_format(const std::string& what) {
  return fail(Code::kInvalidArgument, "not a valid serialized jax.export Exported: " + what);
}

std::string dtype_name(uint8_t kind) {
  static const char* const kNames[] = {
      "i1",  "i8",   "i16",  "i32",  "i64",  "ui8",          "ui16",         "ui32",       "ui64",
      "f16", "f32",  "f64",  "complex<f32>", "complex<f64>", "bf16",         "i4",         "ui4",
      "f8E4M3B11FNUZ", "f8E4M3FN", "f8E4M3FNUZ", "f8E5M2", "f8E5M2FNUZ", "f0", "f8E4M3", "f8E3M4",
      "f8E8M0FNU", "f4E2M1FN"};
  if (kind < sizeof(kNames) / sizeof(kNames[0])) return kNames[kind];
  return fmt::format("dtype#{}", kind);
}

std::optional<std::vector<std::string>> strings_at(const Buffer& b, size_t vector) {
  auto n = b.length(vector, 4);
  if (!n) return std::nullopt;
  std::vector<std::string> out;
  for (uint32_t i = 0; i < *n; ++i) {
    auto s = b.deref(vector + 4 + 4 * static_cast<size_t>(i));
    auto text = s ? b.string(*s) : std::nullopt;
    if (!text) return std::nullopt;
    out.emplace_back(*text);
  }
  return out;
}

std::optional<JaxAval> aval_at(const Buffer& b, size_t table) {
  JaxAval a;
  if (auto shape = b.field(table, kAvalShape)) {
    auto vec = b.deref(*shape);
    auto dims = vec ? strings_at(b, *vec) : std::nullopt;
    if (!dims) return std::nullopt;
    a.shape = std::move(*dims);
  }
  auto dtype = b.field(table, kAvalDtype);
  a.dtype = dtype_name(dtype ? b.read<uint8_t>(*dtype).value_or(0) : 0);
  return a;
}

// A vector of AbstractValue tables.
std::optional<std::vector<JaxAval>> avals_at(const Buffer& b, size_t vector) {
  auto n = b.length(vector, 4);
  if (!n) return std::nullopt;
  std::vector<JaxAval> out;
  for (uint32_t i = 0; i < *n; ++i) {
    auto t = b.deref(vector + 4 + 4 * static_cast<size_t>(i));
    auto a = t ? aval_at(b, *t) : std::nullopt;
    if (!a) return std::nullopt;
    out.push_back(std::move(*a));
  }
  return out;
}

// The avals of a function side: the indices into unique_avals (newer
// writers), else the avals themselves (older ones).
std::optional<std::vector<JaxAval>> side_avals(const Buffer& b, size_t root, int idxs_field, int avals_field,
                                               const std::optional<std::vector<JaxAval>>& unique) {
  if (auto idxs = b.field(root, idxs_field); idxs && unique) {
    auto vec = b.deref(*idxs);
    auto n = vec ? b.length(*vec, 4) : std::nullopt;
    if (!n) return std::nullopt;
    std::vector<JaxAval> out;
    for (uint32_t i = 0; i < *n; ++i) {
      auto k = b.read<uint32_t>(*vec + 4 + 4 * static_cast<size_t>(i));
      if (!k || *k >= unique->size()) return std::nullopt;
      out.push_back((*unique)[*k]);
    }
    return out;
  }
  if (auto avals = b.field(root, avals_field)) {
    auto vec = b.deref(*avals);
    return vec ? avals_at(b, *vec) : std::nullopt;
  }
  return std::vector<JaxAval>{};
}

std::optional<std::string_view> module_of(const Buffer& b, std::string_view bytes, size_t root) {
  auto field = b.field(root, kModule);
  auto vec = field ? b.deref(*field) : std::nullopt;
  auto n = vec ? b.length(*vec, 1) : std::nullopt;
  if (!n) return std::nullopt;
  return bytes.substr(*vec + 4, *n);
}

}  // namespace

std::vector<std::string> JaxExported::symbolic_dims() const {
  std::vector<std::string> names;
  for (const auto& a : inputs) {
    for (const auto& d : a.shape) {
      bool number = !d.empty() && d.find_first_not_of("0123456789") == std::string::npos;
      if (!number && std::find(names.begin(), names.end(), d) == names.end()) names.push_back(d);
    }
  }
  return names;
}

bool is_jax_exported(std::string_view bytes) {
  if (bytes.size() < 16 || util::starts_with(bytes, kBytecodeMagic)) return false;
  Buffer b(bytes);
  auto root = b.deref(0);
  if (!root) return false;
  auto module = module_of(b, bytes, *root);
  return module && util::starts_with(*module, kBytecodeMagic);
}

Result<JaxExported> read_jax_exported(std::string_view bytes) {
  if (!is_jax_exported(bytes)) return tl::unexpected(fail_format("no StableHLO module inside").error());
  Buffer b(bytes);
  size_t root = *b.deref(0);
  JaxExported e;
  e.module = *module_of(b, bytes, root);
  if (auto f = b.field(root, kSerializationVersion)) e.serialization_version = b.read<uint16_t>(*f).value_or(0);
  if (auto f = b.field(root, kCallingConventionVersion)) e.calling_convention_version = b.read<uint16_t>(*f).value_or(0);
  if (auto f = b.field(root, kFunctionName)) {
    auto s = b.deref(*f);
    auto name = s ? b.string(*s) : std::nullopt;
    if (!name) return tl::unexpected(fail_format("the function name is cut off").error());
    e.function_name = std::string(*name);
  }
  if (auto f = b.field(root, kPlatforms)) {
    auto vec = b.deref(*f);
    auto names = vec ? strings_at(b, *vec) : std::nullopt;
    if (!names) return tl::unexpected(fail_format("the platform list is cut off").error());
    e.platforms = std::move(*names);
  }
  std::optional<std::vector<JaxAval>> unique;
  if (auto f = b.field(root, kUniqueAvals)) {
    auto vec = b.deref(*f);
    unique = vec ? avals_at(b, *vec) : std::nullopt;
  }
  auto in = side_avals(b, root, kInAvalsIdxs, kInAvals, unique);
  auto out = side_avals(b, root, kOutAvalsIdxs, kOutAvals, unique);
  if (!in || !out) return tl::unexpected(fail_format("the argument or result shapes are cut off").error());
  e.inputs = std::move(*in);
  e.outputs = std::move(*out);
  return e;
}

std::string jax_platform_of(std::string_view backend) {
  if (backend == "cuda" || backend == "cpu" || backend == "rocm") return std::string(backend);
  return "";
}

Result<std::string> bind_vhlo_platform_index(std::string_view text, int64_t index) {
  constexpr std::string_view kMain = "vhlo.func_v1 @main(";
  size_t at = text.find(kMain);
  if (at == std::string_view::npos) return fail(Code::kInvalidArgument, "the module has no vhlo.func_v1 @main");
  size_t line_start = text.rfind('\n', at);
  line_start = line_start == std::string_view::npos ? 0 : line_start + 1;
  size_t indent = at - line_start;
  size_t args = at + kMain.size();
  // The first argument ends at the first ", %" at this level: tensor types hold no "%".
  size_t comma = text.find(", %", args);
  size_t eol = text.find('\n', at);
  if (comma == std::string_view::npos || comma > eol) {
    return fail(Code::kInvalidArgument, "@main has no platform index followed by other arguments");
  }
  std::string first(text.substr(args, comma - args));  // "%arg0: !vhlo.tensor_v1<!vhlo.i32_v1>"
  size_t colon = first.find(':');
  if (colon == std::string::npos) return fail(Code::kInvalidArgument, "cannot read @main's first argument");
  std::string name = first.substr(0, colon);
  std::string type(util::trim(first.substr(colon + 1)));
  if (size_t loc = type.find(" loc("); loc != std::string::npos) type.resize(loc);  // printed with locations
  // The body ends at "}" at the signature's indent; its arg_attrs follow.
  std::string closing = "\n" + std::string(indent, ' ') + "} {arg_attrs = #vhlo.array_v1<[";
  size_t attrs = text.find(closing, eol);
  if (attrs == std::string_view::npos) {
    return fail(Code::kInvalidArgument, "@main's argument attributes are not where iree-opt prints them");
  }
  size_t list = attrs + closing.size();
  std::string_view key = "#vhlo.string_v1<\"_platform_index\">";
  size_t first_attr_end = text.find("}>, ", list);
  if (first_attr_end == std::string_view::npos || text.substr(list, first_attr_end - list).find(key) == std::string_view::npos) {
    return std::string(text);  // the first argument is no platform index
  }
  std::string out;
  out.reserve(text.size() + 200);
  out.append(text.substr(0, args));
  out.append(text.substr(comma + 2, eol - comma - 2));
  out.append(fmt::format("\n{}  {} = \"vhlo.constant_v1\"() <{{value = #vhlo.tensor_v1<dense<{}> : tensor<i32>>}}> : () -> {}",
                         std::string(indent, ' '), name, index, type));
  out.append(text.substr(eol, list - eol));
  out.append(text.substr(first_attr_end + 4));
  return out;
}

}  // namespace kiln::mlir
