#include "kiln/mlir/jax_export.h"

#include <charconv>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "kiln/mlir/types.h"
#include "kiln/util/strings.h"

namespace kiln::mlir {
namespace {

std::vector<std::string_view> lines_of(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    lines.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

std::string join_lines(const std::vector<std::string>& lines) {
  size_t size = 0;
  for (const auto& l : lines) size += l.size() + 1;
  std::string out;
  out.reserve(size);
  for (size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size()) out += '\n';
  }
  return out;
}

// The index of the bracket that closes the one at `open`, counting (), <>,
// [], {} and skipping quoted strings; npos when unbalanced.
size_t closing(std::string_view s, size_t open) {
  int depth = 0;
  bool quoted = false;
  for (size_t i = open; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    else if (c == ')' || c == '>' || c == ']' || c == '}') {
      if (c == '>' && i > 0 && s[i - 1] == '-') continue;  // "->"
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

// Splits on commas outside brackets and strings.
std::vector<std::string> split_top(std::string_view s) {
  std::vector<std::string> parts;
  int depth = 0;
  bool quoted = false;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted) {
      if (c == '\\') ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    else if ((c == ')' || c == '>' || c == ']' || c == '}') && !(c == '>' && i > 0 && s[i - 1] == '-')) --depth;
    else if (c == ',' && depth == 0) {
      parts.emplace_back(util::trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (!util::trim(s.substr(start)).empty()) parts.emplace_back(util::trim(s.substr(start)));
  return parts;
}

// The type at the start of `s` ("tensor<?x8xf32> loc(...)" -> "tensor<?x8xf32>").
std::string_view leading_type(std::string_view s) {
  size_t lt = s.find('<');
  size_t space = s.find(' ');
  if (lt != std::string_view::npos && (space == std::string_view::npos || lt < space)) {
    size_t end = closing(s, lt);
    return end == std::string_view::npos ? s : s.substr(0, end + 1);
  }
  return space == std::string_view::npos ? s : s.substr(0, space);
}

std::string tensor_text(const std::vector<int64_t>& dims, const std::string& element) {
  std::string out = "tensor<";
  for (int64_t d : dims) out += (d == kDynamic ? std::string("?") : std::to_string(d)) + "x";
  return out + element + ">";
}

// One argument of a signature: "%arg0: tensor<?x8xf32> {attrs} loc(...)".
struct Arg {
  std::string name;  // "%arg0"
  std::string type;  // "tensor<?x8xf32>"
  std::string rest;  // " {jax.global_constant = \"b\"} loc(unknown)"
};

struct Signature {
  size_t line = 0;
  std::string head;  // up to and with "("
  std::vector<Arg> args;
  std::string tail;  // from the closing ")"
  size_t indent = 0;
};

std::optional<Signature> parse_signature(std::string_view line, size_t index, std::string_view marker) {
  size_t at = line.find(marker);
  if (at == std::string_view::npos) return std::nullopt;
  size_t open = at + marker.size() - 1;
  size_t close = closing(line, open);
  if (close == std::string_view::npos) return std::nullopt;
  Signature sig;
  sig.line = index;
  sig.head = std::string(line.substr(0, open + 1));
  sig.tail = std::string(line.substr(close));
  sig.indent = line.find_first_not_of(' ');
  for (const auto& part : split_top(line.substr(open + 1, close - open - 1))) {
    size_t colon = part.find(": ");
    if (colon == std::string::npos) return std::nullopt;
    Arg arg;
    arg.name = part.substr(0, colon);
    std::string_view after = std::string_view(part).substr(colon + 2);
    arg.type = std::string(leading_type(after));
    arg.rest = std::string(after.substr(arg.type.size()));
    sig.args.push_back(std::move(arg));
  }
  return sig;
}

std::string print_signature(const Signature& sig) {
  std::vector<std::string> parts;
  for (const auto& a : sig.args) parts.push_back(a.name + ": " + a.type + a.rest);
  return sig.head + util::join(parts, ", ") + sig.tail;
}

// @main's signature and the index one past its last body line.
struct Main {
  Signature sig;
  size_t end = 0;
};

Result<Main> find_main(const std::vector<std::string_view>& lines) {
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("func.func") == std::string_view::npos) continue;
    auto sig = parse_signature(lines[i], i, "@main(");
    if (!sig) continue;
    for (size_t j = i + 1; j < lines.size(); ++j) {
      std::string_view t = util::trim(lines[j]);
      if (util::starts_with(t, "}") && lines[j].find_first_not_of(' ') == sig->indent) return Main{*sig, j};
    }
    break;
  }
  return fail(Code::kInvalidArgument,
              "no function @main printed one operation a line, as jax.export's mlir_module() prints it");
}

std::optional<std::string> global_constant(const std::string& rest) {
  std::string_view key = "jax.global_constant = \"";
  size_t at = rest.find(key);
  if (at == std::string::npos) return std::nullopt;
  size_t start = at + key.size();
  size_t end = rest.find('"', start);
  if (end == std::string::npos) return std::nullopt;
  return rest.substr(start, end - start);
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// "%0 = stablehlo.get_dimension_size %arg4, dim = 0 : ..." -> ("%0", "%arg4", 0)
struct DimRead {
  std::string value, argument;
  int64_t dim = 0;
  size_t line = 0;
};

std::optional<DimRead> dim_read(std::string_view line, size_t index) {
  std::string_view t = util::trim(line);
  size_t eq = t.find(" = stablehlo.get_dimension_size ");
  if (eq == std::string_view::npos) return std::nullopt;
  DimRead r;
  r.value = std::string(t.substr(0, eq));
  std::string_view rest = t.substr(eq + std::string_view(" = stablehlo.get_dimension_size ").size());
  size_t comma = rest.find(", dim = ");
  size_t colon = rest.find(" :");
  if (comma == std::string_view::npos || colon == std::string_view::npos || colon < comma) return std::nullopt;
  r.argument = std::string(rest.substr(0, comma));
  auto dim = to_int(rest.substr(comma + 8, colon - comma - 8));
  if (!dim) return std::nullopt;
  r.dim = *dim;
  r.line = index;
  return r;
}

// Every place @main reads a symbolic dimension: the reading passed to the
// wrapped function, and readings the shape assertions compare to it.
struct Reading {
  std::string symbol;
  DimRead read;
  bool primary = false;
};

Result<std::vector<Reading>> readings(const std::vector<std::string_view>& lines, const Main& main) {
  std::map<std::string, DimRead> reads;
  std::map<std::string, std::string> symbol_of;  // value -> symbol
  std::vector<Reading> out;
  for (size_t i = main.sig.line + 1; i < main.end; ++i) {
    if (auto r = dim_read(lines[i], i)) reads[r->value] = *r;
    std::string_view t = util::trim(lines[i]);
    size_t call = t.find("call @");
    if (call == std::string_view::npos || t.find(" = ") == std::string_view::npos) continue;
    size_t name_end = t.find('(', call);
    if (name_end == std::string_view::npos) continue;
    std::string callee(t.substr(call + 5, name_end - call - 5));
    size_t close = closing(t, name_end);
    if (close == std::string_view::npos) continue;
    auto operands = split_top(t.substr(name_end + 1, close - name_end - 1));
    // The wrapped function's dimension arguments name the symbols.
    for (const auto& l : lines) {
      if (l.find("func.func") == std::string_view::npos) continue;
      auto callee_sig = parse_signature(l, 0, callee + "(");
      if (!callee_sig) continue;
      for (size_t a = 0; a < callee_sig->args.size() && a < operands.size(); ++a) {
        auto symbol = global_constant(callee_sig->args[a].rest);
        if (!symbol || *symbol == "_platform_index") continue;
        auto found = reads.find(operands[a]);
        if (found == reads.end()) {
          return fail(Code::kInvalidArgument,
                      fmt::format("the symbolic dimension '{}' is not read directly from an argument's shape; kiln "
                                  "binds only dimensions that some argument has as a whole (like 'b', not '2*b')",
                                  *symbol));
        }
        symbol_of[operands[a]] = *symbol;
        out.push_back({*symbol, found->second, true});
      }
      break;
    }
  }
  // "%5 = stablehlo.compare EQ, %2, %1, ..." with %1 a symbol: %2 is one too.
  for (size_t i = main.sig.line + 1; i < main.end; ++i) {
    std::string_view t = util::trim(lines[i]);
    size_t at = t.find(" = stablehlo.compare EQ, ");
    if (at == std::string_view::npos) continue;
    auto ops = split_top(t.substr(at + std::string_view(" = stablehlo.compare EQ, ").size()));
    if (ops.size() < 2) continue;
    for (int k = 0; k < 2; ++k) {
      auto sym = symbol_of.find(ops[k]);
      auto other = reads.find(ops[1 - k]);
      if (sym != symbol_of.end() && other != reads.end() && !symbol_of.count(ops[1 - k])) {
        out.push_back({sym->second, other->second, false});
      }
    }
  }
  return out;
}

size_t arg_index(const Signature& sig, const std::string& name) {
  for (size_t i = 0; i < sig.args.size(); ++i) {
    if (sig.args[i].name == name) return i;
  }
  return sig.args.size();
}

// The pieces of "%r = stablehlo.dynamic_broadcast_in_dim %x, %shape, dims = [..] {attrs} : (T, S) -> R rest".
struct Broadcast {
  std::string indent, result, operand, shape;
  std::vector<int64_t> dims;
  std::string operand_type, shape_type, result_type, rest;
};

std::optional<Broadcast> parse_broadcast(std::string_view line) {
  constexpr std::string_view kOp = " = stablehlo.dynamic_broadcast_in_dim ";
  size_t at = line.find(kOp);
  if (at == std::string_view::npos) return std::nullopt;
  Broadcast b;
  size_t first = line.find_first_not_of(' ');
  b.indent = std::string(line.substr(0, first));
  b.result = std::string(line.substr(first, at - first));
  std::string_view s = line.substr(at + kOp.size());
  size_t dims_at = s.find(", dims = [");
  if (dims_at == std::string_view::npos) return std::nullopt;
  auto operands = split_top(s.substr(0, dims_at));
  if (operands.size() != 2) return std::nullopt;
  b.operand = operands[0];
  b.shape = operands[1];
  size_t dims_end = s.find(']', dims_at);
  if (dims_end == std::string_view::npos) return std::nullopt;
  for (const auto& d : split_top(s.substr(dims_at + 10, dims_end - dims_at - 10))) {
    auto v = to_int(d);
    if (!v) return std::nullopt;
    b.dims.push_back(*v);
  }
  std::string_view after = s.substr(dims_end + 1);
  if (!util::starts_with(after, " : (")) return std::nullopt;  // attributes already given: leave it alone
  size_t open = 3;
  size_t close = closing(after, open);
  if (close == std::string_view::npos) return std::nullopt;
  auto types = split_top(after.substr(open + 1, close - open - 1));
  if (types.size() != 2) return std::nullopt;
  b.operand_type = types[0];
  b.shape_type = types[1];
  std::string_view res = after.substr(close + 1);
  if (!util::starts_with(res, " -> ")) return std::nullopt;
  res = res.substr(4);
  b.result_type = std::string(leading_type(res));
  b.rest = std::string(res.substr(b.result_type.size()));
  return b;
}

}  // namespace

bool is_shape_polymorphic(std::string_view text) {
  size_t module = text.find("module ");
  if (module == std::string_view::npos) return false;
  size_t eol = text.find('\n', module);
  return text.substr(module, eol == std::string_view::npos ? text.size() - module : eol - module)
             .find("jax.uses_shape_polymorphism = true") != std::string_view::npos;
}

Result<std::vector<SymbolicDim>> symbolic_dims(std::string_view text) {
  auto lines = lines_of(text);
  auto main = KILN_TRY(find_main(lines));
  std::vector<SymbolicDim> out;
  for (const auto& r : KILN_TRY(readings(lines, main))) {
    if (r.primary) out.push_back({r.symbol, arg_index(main.sig, r.read.argument), r.read.dim});
  }
  return out;
}

std::string annotate_dynamic_broadcasts(std::string_view text, size_t* annotated) {
  auto lines = lines_of(text);
  std::vector<std::string> out;
  out.reserve(lines.size());
  std::map<std::string, Broadcast> defined;  // within one function
  size_t changed = 0;
  for (auto line : lines) {
    if (line.find("func.func") != std::string_view::npos) defined.clear();
    auto b = parse_broadcast(line);
    if (!b) {
      out.emplace_back(line);
      continue;
    }
    bool merged = false;
    if (auto prev = defined.find(b->operand); prev != defined.end()) {
      // broadcast(broadcast(x, d1), d2) is broadcast(x, d2 o d1).
      std::vector<int64_t> composed;
      for (int64_t d : prev->second.dims) {
        if (d < 0 || static_cast<size_t>(d) >= b->dims.size()) return std::string(text);
        composed.push_back(b->dims[static_cast<size_t>(d)]);
      }
      b->dims = composed;
      b->operand = prev->second.operand;
      b->operand_type = prev->second.operand_type;
      merged = true;
    }
    defined[b->result] = *b;
    auto type = parse_type(b->operand_type);
    std::vector<std::string> nonexpanding;
    if (type && type->is_tensor) {
      for (size_t i = 0; i < type->dims.size(); ++i) {
        if (type->dims[i] == kDynamic) nonexpanding.push_back(std::to_string(i));
      }
    }
    if (nonexpanding.empty() && !merged) {
      out.emplace_back(line);
      continue;
    }
    std::vector<std::string> dims;
    for (int64_t d : b->dims) dims.push_back(std::to_string(d));
    std::string attrs = nonexpanding.empty()
                            ? ""
                            : " {known_nonexpanding_dimensions = array<i64: " + util::join(nonexpanding, ", ") + ">}";
    out.push_back(fmt::format("{}{} = stablehlo.dynamic_broadcast_in_dim {}, {}, dims = [{}]{} : ({}, {}) -> {}{}",
                              b->indent, b->result, b->operand, b->shape, util::join(dims, ", "), attrs,
                              b->operand_type, b->shape_type, b->result_type, b->rest));
    ++changed;
  }
  if (annotated) *annotated = changed;
  return join_lines(out);
}

Result<std::pair<std::string, int64_t>> parse_binding(std::string_view text) {
  size_t eq = text.find('=');
  auto bad = [&] {
    return fail(Code::kInvalidArgument,
                fmt::format("binding '{}' is not NAME=SIZE with a positive size (like b=8)", std::string(text)));
  };
  if (eq == std::string_view::npos || eq == 0) return bad();
  std::string name(util::trim(text.substr(0, eq)));
  auto value = to_int(util::trim(text.substr(eq + 1)));
  if (!value || *value < 1) return bad();
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return bad();
  }
  return std::make_pair(name, *value);
}

std::string binding_slug(const Binding& binding) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : binding) parts.push_back(name + std::to_string(value));
  return util::join(parts, "_");
}

Result<std::string> bind_dims(std::string_view text, const Binding& binding) {
  auto lines = lines_of(text);
  auto main = KILN_TRY(find_main(lines));
  auto found = KILN_TRY(readings(lines, main));
  std::vector<std::string> names;
  for (const auto& r : found) {
    if (r.primary) names.push_back(r.symbol);
  }
  for (const auto& [name, value] : binding) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      return fail(Code::kInvalidArgument,
                  names.empty() ? fmt::format("cannot bind '{}': the program has no symbolic dimensions", name)
                                : fmt::format("cannot bind '{}': the program's symbolic dimensions are {}", name,
                                              util::join(names, ", ")));
    }
  }
  auto value_of = [&](const std::string& symbol) -> std::optional<int64_t> {
    for (const auto& [name, value] : binding) {
      if (name == symbol) return value;
    }
    return std::nullopt;
  };
  std::vector<std::string> out(lines.begin(), lines.end());
  Signature sig = main.sig;
  std::map<size_t, std::vector<int64_t>> static_dims;  // argument -> its new dims
  for (const auto& r : found) {
    auto value = value_of(r.symbol);
    if (!value) continue;
    size_t a = arg_index(sig, r.read.argument);
    if (a == sig.args.size()) continue;  // read from something else than an argument
    auto type = KILN_TRY(parse_type(sig.args[a].type));
    if (!static_dims.count(a)) static_dims[a] = type.dims;
    if (r.read.dim < 0 || static_cast<size_t>(r.read.dim) >= type.dims.size()) continue;
    static_dims[a][static_cast<size_t>(r.read.dim)] = *value;
    out[r.read.line] = fmt::format("{}{} = stablehlo.constant dense<{}> : tensor<i32>",
                                   std::string(lines[r.read.line].substr(0, lines[r.read.line].find_first_not_of(' '))),
                                   r.read.value, *value);
  }
  std::vector<std::string> casts;
  std::string indent(sig.indent + 2, ' ');
  for (const auto& [a, dims] : static_dims) {
    Arg& arg = sig.args[a];
    auto type = KILN_TRY(parse_type(arg.type));
    std::string static_type = tensor_text(dims, type.element);
    std::string renamed = "%kiln_static_" + arg.name.substr(1);
    casts.push_back(fmt::format("{}{} = tensor.cast {} : {} to {}", indent, arg.name, renamed, static_type, arg.type));
    arg.name = renamed;
    arg.type = static_type;
  }
  out[sig.line] = print_signature(sig);
  out.insert(out.begin() + static_cast<long>(sig.line) + 1, casts.begin(), casts.end());
  return join_lines(out);
}

bool has_platform_index(std::string_view text) {
  auto lines = lines_of(text);
  auto main = find_main(lines);
  if (!main) return false;
  for (const auto& a : main->sig.args) {
    if (global_constant(a.rest) == "_platform_index") return true;
  }
  return false;
}

Result<std::string> bind_platform_index(std::string_view text, int64_t index) {
  auto lines = lines_of(text);
  auto main = KILN_TRY(find_main(lines));
  Signature sig = main.sig;
  for (size_t a = 0; a < sig.args.size(); ++a) {
    if (global_constant(sig.args[a].rest) != "_platform_index") continue;
    std::string name = sig.args[a].name;
    sig.args.erase(sig.args.begin() + static_cast<long>(a));
    std::vector<std::string> out(lines.begin(), lines.end());
    out[sig.line] = print_signature(sig);
    out.insert(out.begin() + static_cast<long>(sig.line) + 1,
               fmt::format("{}{} = stablehlo.constant dense<{}> : tensor<i32>", std::string(sig.indent + 2, ' '), name,
                           index));
    return join_lines(out);
  }
  return std::string(text);
}

}  // namespace kiln::mlir
