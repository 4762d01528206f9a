#include "kiln/mlir/dot_algorithm.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "kiln/mlir/types.h"
#include "kiln/util/strings.h"

namespace kiln::mlir {
namespace {

constexpr std::string_view kPrettyOp = "stablehlo.dot_general ";
constexpr std::string_view kPrettyAlgorithm = ", algorithm = <";
constexpr std::string_view kGenericAlgorithm = "#stablehlo.dot_algorithm<";
constexpr std::string_view kVhloAlgorithm = "accumulation_type = #vhlo.type_v1<";

// The index of the '>' that closes the '<' at `open`; npos when unbalanced.
size_t closing_angle(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '<') ++depth;
    else if (s[i] == '>' && --depth == 0) return i;
  }
  return std::string_view::npos;
}

// The end of a type starting at `pos`: the first top-level ',', ')' or
// space after it.
size_t type_end(std::string_view s, size_t pos) {
  int depth = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    char c = s[i];
    if (c == '<' || c == '(' || c == '[' || c == '{') ++depth;
    else if (c == '>' || c == ']' || c == '}') --depth;
    else if (c == ')' && depth-- == 0) return i;
    else if ((c == ',' || c == ' ') && depth == 0) return i;
  }
  return s.size();
}

// Where a tensor type's element type is: after "tensor<" and the
// dimensions ("4x", "?x"). npos for anything but a ranked tensor.
std::pair<size_t, size_t> element_span(std::string_view type) {
  if (!util::starts_with(type, "tensor<") || type.back() != '>') return {std::string_view::npos, 0};
  size_t pos = 7;
  for (;;) {
    size_t end = pos;
    while (end < type.size() && (std::isdigit(static_cast<unsigned char>(type[end])) || type[end] == '?')) ++end;
    if (end == pos || end >= type.size() || type[end] != 'x') break;
    pos = end + 1;
  }
  size_t end = type_end(type.substr(0, type.size() - 1), pos);
  return {pos, end - pos};
}

std::string element_of(std::string_view type) {
  auto [pos, len] = element_span(type);
  return pos == std::string_view::npos ? std::string() : std::string(type.substr(pos, len));
}

std::string with_element(std::string_view type, std::string_view element) {
  auto [pos, len] = element_span(type);
  std::string out(type);
  return out.replace(pos, len, element);
}

}  // namespace

Result<DotAlgorithm> parse_dot_algorithm(std::string_view body) {
  DotAlgorithm a;
  int seen = 0;
  for (const auto& field : util::split(body, ',')) {
    std::string_view f = util::trim(field);
    size_t eq = f.find('=');
    if (eq == std::string_view::npos) return fail(Code::kInvalidArgument, fmt::format("'{}' is no name = value", f));
    std::string_view name = util::trim(f.substr(0, eq)), value = util::trim(f.substr(eq + 1));
    auto integer = [&](int64_t& out) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
      return ec == std::errc() && p == value.data() + value.size() && out >= 1;
    };
    bool ok = true;
    if (name == "lhs_precision_type") a.lhs_precision = value;
    else if (name == "rhs_precision_type") a.rhs_precision = value;
    else if (name == "accumulation_type") a.accumulation = value;
    else if (name == "lhs_component_count") ok = integer(a.lhs_components);
    else if (name == "rhs_component_count") ok = integer(a.rhs_components);
    else if (name == "num_primitive_operations") ok = integer(a.primitive_operations);
    else if (name == "allow_imprecise_accumulation") {
      ok = value == "true" || value == "false";
      a.imprecise_accumulation = value == "true";
    } else {
      return fail(Code::kInvalidArgument, fmt::format("unknown field '{}'", name));
    }
    if (!ok) return fail(Code::kInvalidArgument, fmt::format("bad value '{}' for {}", value, name));
    ++seen;
  }
  if (seen != 7 || a.lhs_precision.empty() || a.rhs_precision.empty() || a.accumulation.empty()) {
    return fail(Code::kInvalidArgument, "expected the 7 fields of a dot algorithm");
  }
  return a;
}

bool has_dot_algorithm(std::string_view text) {
  return has_vhlo_dot_algorithm(text) || text.find(kGenericAlgorithm) != std::string_view::npos ||
         (text.find(kPrettyAlgorithm) != std::string_view::npos && text.find("dot_general") != std::string_view::npos);
}

// VHLO writes every dot_general_v2 with an accumulation type, "none" when
// it has no algorithm.
bool has_vhlo_dot_algorithm(std::string_view text) {
  for (size_t at = text.find(kVhloAlgorithm); at != std::string_view::npos; at = text.find(kVhloAlgorithm, at + 1)) {
    if (text.substr(at + kVhloAlgorithm.size(), 13) != "!vhlo.none_v1") return true;
  }
  return false;
}

bool has_narrow_dot(std::string_view text) {
  for (size_t at = text.find("dot_general"); at != std::string_view::npos; at = text.find("dot_general", at + 1)) {
    size_t end = text.find('\n', at);
    std::string_view line = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    size_t arrow = line.rfind("->");
    if (arrow != std::string_view::npos && line.find("f16", arrow) != std::string_view::npos) return true;
  }
  return false;
}

namespace {

// One pretty-form dot_general line, taken apart.
struct DotLine {
  std::string_view indent, result, lhs, rhs;
  std::string attributes;  // between the operands and " : (", the algorithm removed
  std::string_view lhs_type, rhs_type, result_type, tail;
  bool has_algorithm = false;
  DotAlgorithm algorithm;
};

Result<DotLine> parse_dot_line(std::string_view line, size_t op) {
  DotLine d;
  auto bad = [&](std::string_view what) { return fail(Code::kInvalidArgument, std::string(what)); };
  std::string_view head = line.substr(0, op);
  size_t first = head.find_first_not_of(' ');
  if (first == std::string_view::npos || head[first] != '%' || !util::starts_with(head.substr(head.size() - 3), " = ")) {
    return bad("expected '%name = stablehlo.dot_general ...'");
  }
  d.indent = head.substr(0, first);
  d.result = head.substr(first, head.size() - 3 - first);
  std::string_view rest = line.substr(op + kPrettyOp.size());
  size_t comma1 = rest.find(", "), comma2 = comma1 == std::string_view::npos ? comma1 : rest.find(", ", comma1 + 2);
  if (comma2 == std::string_view::npos) return bad("expected two operands");
  d.lhs = rest.substr(0, comma1);
  d.rhs = rest.substr(comma1 + 2, comma2 - comma1 - 2);
  size_t alg = rest.find(kPrettyAlgorithm), alg_end = comma2 + 1;
  d.has_algorithm = alg != std::string_view::npos;
  if (d.has_algorithm) {
    alg_end = closing_angle(rest, alg + kPrettyAlgorithm.size() - 1);
    if (alg_end == std::string_view::npos) return bad("unbalanced algorithm = <...>");
    auto algorithm = parse_dot_algorithm(rest.substr(alg + kPrettyAlgorithm.size(), alg_end - alg - kPrettyAlgorithm.size()));
    if (!algorithm) return tl::unexpected(algorithm.error().context("its algorithm"));
    d.algorithm = std::move(*algorithm);
  }
  size_t sig = rest.find(" : (", alg_end);
  if (sig == std::string_view::npos) return bad("expected ' : (' and the operand types");
  d.attributes = d.has_algorithm ? std::string(rest.substr(comma2 + 2, alg - comma2 - 2)) +
                                       std::string(rest.substr(alg_end + 1, sig - alg_end - 1))
                                 : std::string(rest.substr(comma2 + 2, sig - comma2 - 2));
  size_t pos = sig + 4, end = type_end(rest, pos);
  d.lhs_type = rest.substr(pos, end - pos);
  if (end + 2 > rest.size() || rest.substr(end, 2) != ", ") return bad("expected two operand types");
  pos = end + 2, end = type_end(rest, pos);
  d.rhs_type = rest.substr(pos, end - pos);
  if (rest.substr(end, 5) != ") -> ") return bad("expected ') -> ' and the result type");
  pos = end + 5, end = type_end(rest, pos);
  d.result_type = rest.substr(pos, end - pos);
  d.tail = rest.substr(end);
  for (auto type : {d.lhs_type, d.rhs_type, d.result_type}) {
    if (element_of(type).empty()) return bad(fmt::format("'{}' is no ranked tensor type", type));
  }
  return d;
}

// The type an operand is rounded to. tf32 has no StableHLO type: it is f32
// rounded to 10 mantissa bits.
Result<std::string> checked_precision(const std::string& precision, const DotAlgorithm& a) {
  if (a.emulated()) return a.accumulation;
  if (precision == "tf32") return precision;
  const auto& known = known_element_types();
  bool is_float = precision == "bf16" || util::starts_with(precision, "f");
  if (std::find(known.begin(), known.end(), precision) == known.end() || !is_float) {
    return fail(Code::kInvalidArgument, fmt::format("precision type {} has no StableHLO float type", precision));
  }
  return precision;
}

// The lines that round `operand` (of type `type`) to `precision`; returns
// the value that holds it.
std::string round_operand(std::vector<std::string>& out, const DotLine& d, std::string_view operand,
                          std::string_view type, const std::string& precision, const std::string& name) {
  std::string value(operand), current(type);
  std::string storage = precision == "tf32" ? "f32" : precision;
  if (element_of(type) != storage) {
    std::string converted = with_element(type, storage);
    std::string next = name + (precision == "tf32" ? "_f32" : "");
    out.push_back(fmt::format("{}{} = stablehlo.convert {} : ({}) -> {}{}", d.indent, next, value, current, converted,
                              d.tail));
    value = next, current = converted;
  }
  if (precision == "tf32") {
    out.push_back(fmt::format("{}{} = stablehlo.reduce_precision {}, format = e8m10 : {}{}", d.indent, name, value,
                              current, d.tail));
    value = name;
  }
  return value;
}

bool narrow(const std::string& element) { return element == "bf16" || element == "f16"; }

// A dot without an algorithm, of 16-bit floats, summed in f32: the algorithm
// of its own operand types with f32 accumulation.
void accumulate_in_f32(DotLine& d) {
  d.algorithm.lhs_precision = element_of(d.lhs_type);
  d.algorithm.rhs_precision = element_of(d.rhs_type);
  d.algorithm.accumulation = "f32";
}

Result<std::vector<std::string>> lower_line(DotLine d, size_t index) {
  if (!d.has_algorithm) accumulate_in_f32(d);
  auto lhs_precision = KILN_TRY(checked_precision(d.algorithm.lhs_precision, d.algorithm));
  auto rhs_precision = KILN_TRY(checked_precision(d.algorithm.rhs_precision, d.algorithm));
  auto accumulation = KILN_TRY(checked_precision(d.algorithm.accumulation, DotAlgorithm{}));
  if (accumulation == "tf32") return fail(Code::kInvalidArgument, "accumulation type tf32 has no StableHLO type");
  std::vector<std::string> out;
  std::string prefix = fmt::format("%kiln_dot{}", index);
  std::string lhs = round_operand(out, d, d.lhs, d.lhs_type, lhs_precision, prefix + "_lhs");
  std::string rhs = round_operand(out, d, d.rhs, d.rhs_type, rhs_precision, prefix + "_rhs");
  std::string lhs_type = with_element(d.lhs_type, lhs_precision == "tf32" ? "f32" : lhs_precision);
  std::string rhs_type = with_element(d.rhs_type, rhs_precision == "tf32" ? "f32" : rhs_precision);
  std::string sum_type = with_element(d.result_type, accumulation);
  bool same = sum_type == d.result_type;
  std::string sum = same ? std::string(d.result) : prefix;
  out.push_back(fmt::format("{}{} = stablehlo.dot_general {}, {}, {} : ({}, {}) -> {}{}", d.indent, sum, lhs, rhs,
                            d.attributes, lhs_type, rhs_type, sum_type, d.tail));
  if (!same) {
    out.push_back(fmt::format("{}{} = stablehlo.convert {} : ({}) -> {}{}", d.indent, d.result, sum, sum_type,
                              d.result_type, d.tail));
  }
  return out;
}

}  // namespace

Result<LoweredDots> lower_dot_algorithms(std::string_view text, DotOptions options) {
  LoweredDots out;
  out.text.reserve(text.size() + text.size() / 64);
  size_t pos = 0, line_number = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    ++line_number;
    size_t op = line.find(kPrettyOp);
    bool algorithm = op != std::string_view::npos && line.find(kPrettyAlgorithm, op) != std::string_view::npos;
    std::optional<DotLine> dot;
    if (algorithm || (options.f32_accumulation && op != std::string_view::npos)) {
      auto parsed = parse_dot_line(line, op);
      if (parsed && (algorithm || narrow(element_of(parsed->result_type)))) dot = std::move(*parsed);
      if (!parsed && algorithm) {
        return fail(Code::kInvalidArgument, fmt::format("line {}: cannot rewrite this dot_general's algorithm: {}",
                                                        line_number, parsed.error().message));
      }
    }
    if (dot) {
      auto lowered = lower_line(std::move(*dot), out.lowered + out.widened);
      if (!lowered) {
        return fail(Code::kInvalidArgument, fmt::format("line {}: cannot rewrite this dot_general's algorithm: {}",
                                                        line_number, lowered.error().message));
      }
      out.text += util::join(*lowered, "\n");
      ++(algorithm ? out.lowered : out.widened);
    } else if (line.find(kGenericAlgorithm) != std::string_view::npos || has_vhlo_dot_algorithm(line)) {
      return fail(Code::kInvalidArgument,
                  fmt::format("line {}: a dot_general with an algorithm in the generic or VHLO form; kiln rewrites "
                              "the pretty form that jax.export's mlir_module() and iree-opt print",
                              line_number));
    } else {
      out.text += line;
    }
    if (end < text.size()) out.text += '\n';
    pos = end + 1;
  }
  return out;
}

}  // namespace kiln::mlir
