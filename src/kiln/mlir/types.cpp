#include "kiln/mlir/types.h"

#include <algorithm>
#include <cctype>

#include "kiln/util/strings.h"

namespace kiln::mlir {
namespace {

bool is_integer_name(std::string_view name) {
  // i1..i64, si*, ui*: StableHLO uses i2, i4, i8, i16, i32, i64 and ui of those.
  static const char* widths[] = {"1", "2", "4", "8", "16", "32", "64"};
  for (std::string_view prefix : {"i", "si", "ui"}) {
    if (!util::starts_with(name, prefix)) continue;
    std::string_view width = name.substr(prefix.size());
    for (const char* w : widths) {
      if (width == w) return !(prefix != "i" && width == "1");
    }
  }
  return false;
}

bool is_float_name(std::string_view name) {
  static const char* floats[] = {"f16", "bf16", "f32", "f64", "tf32",
                                 "f8E4M3FN", "f8E5M2", "f8E4M3FNUZ", "f8E5M2FNUZ", "f8E4M3B11FNUZ",
                                 "f8E4M3", "f8E3M4", "f8E8M0FNU", "f4E2M1FN", "f6E2M3FN", "f6E3M2FN"};
  return std::any_of(std::begin(floats), std::end(floats), [&](const char* f) { return name == f; });
}

// Strips a VHLO wrapper: "!vhlo.f32_v1" -> "f32"; other text unchanged.
std::string_view strip_vhlo(std::string_view text) {
  if (!util::starts_with(text, "!vhlo.")) return text;
  text.remove_prefix(6);
  size_t version = text.rfind("_v");
  if (version != std::string_view::npos && text.find('<') == std::string_view::npos) {
    text = text.substr(0, version);
  }
  return text;
}

Result<ValueType> parse_tensor_body(std::string_view body, std::string_view whole) {
  ValueType type;
  type.is_tensor = true;
  if (util::starts_with(body, "*x")) {
    type.ranked = false;
    body.remove_prefix(2);
  }
  // Dimensions: ("?" | digits) "x", repeated, then the element type.
  while (!body.empty() && (std::isdigit(static_cast<unsigned char>(body[0])) || body[0] == '?')) {
    size_t x = body.find('x');
    if (x == std::string_view::npos) break;
    std::string_view dim = body.substr(0, x);
    if (dim == "?") {
      type.dims.push_back(kDynamic);
    } else {
      int64_t value = 0;
      for (char c : dim) {
        if (!std::isdigit(static_cast<unsigned char>(c)) || value > (INT64_MAX - 9) / 10) {
          return fail(Code::kInvalidArgument, "bad dimension '" + std::string(dim) + "' in " + std::string(whole));
        }
        value = value * 10 + (c - '0');
      }
      type.dims.push_back(value);
    }
    body.remove_prefix(x + 1);
  }
  // An encoding follows a top-level comma: "f32, #stablehlo.bounds<?, 4>".
  size_t comma = std::string_view::npos;
  int depth = 0;
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '<') ++depth;
    if (body[i] == '>') --depth;
    if (body[i] == ',' && depth == 0) {
      comma = i;
      break;
    }
  }
  std::string_view element = util::trim(body.substr(0, comma));
  if (comma != std::string_view::npos) {
    type.bounded = body.find("bounds", comma) != std::string_view::npos;
  }
  type.element = normalize_element_type(element);
  if (type.element.empty()) {
    return fail(Code::kInvalidArgument,
                "unknown element type '" + std::string(element) + "' in " + std::string(whole));
  }
  return type;
}

}  // namespace

std::string normalize_element_type(std::string_view text) {
  text = util::trim(text);
  std::string_view name = strip_vhlo(text);
  if (name == "bool") return "i1";
  if (name == "index") return "index";
  if (is_integer_name(name) || is_float_name(name)) return std::string(name);
  for (std::string_view prefix : {"complex<", "complex_v1<"}) {
    if (util::starts_with(name, prefix) && name.back() == '>') {
      std::string inner = normalize_element_type(name.substr(prefix.size(), name.size() - prefix.size() - 1));
      if (inner == "f32" || inner == "f64") return "complex<" + inner + ">";
      return "";
    }
  }
  return "";
}

const std::vector<std::string>& known_element_types() {
  static const std::vector<std::string> types = {
      "i1", "i2", "i4", "i8", "i16", "i32", "i64", "ui2", "ui4", "ui8", "ui16", "ui32", "ui64",
      "f16", "bf16", "f32", "f64", "f8E4M3FN", "f8E5M2", "f8E4M3FNUZ", "f8E5M2FNUZ",
      "f8E4M3B11FNUZ", "f8E4M3", "f8E3M4", "f8E8M0FNU", "f4E2M1FN", "f6E2M3FN", "f6E3M2FN",
      "complex<f32>", "complex<f64>"};
  return types;
}

Result<ValueType> parse_type(std::string_view text) {
  text = util::trim(text);
  for (std::string_view prefix : {"tensor<", "!vhlo.tensor_v1<"}) {
    if (util::starts_with(text, prefix)) {
      if (text.back() != '>') return fail(Code::kInvalidArgument, "unterminated type " + std::string(text));
      return parse_tensor_body(text.substr(prefix.size(), text.size() - prefix.size() - 1), text);
    }
  }
  ValueType type;
  if (text == "!vhlo.token_v1" || text == "!stablehlo.token") {
    type.element = "!stablehlo.token";
  } else if (!text.empty()) {
    type.element = std::string(text);
  } else {
    return fail(Code::kInvalidArgument, "empty type");
  }
  return type;
}

std::string ValueType::text() const {
  if (!is_tensor) return element;
  std::string out = "tensor<";
  if (!ranked) out += "*x";
  for (int64_t d : dims) {
    out += d == kDynamic ? std::string("?") : std::to_string(d);
    out += 'x';
  }
  return out + element + ">";
}

bool ValueType::has_dynamic_dims() const {
  return !ranked || std::find(dims.begin(), dims.end(), kDynamic) != dims.end();
}

}  // namespace kiln::mlir
