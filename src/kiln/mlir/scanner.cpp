#include "kiln/mlir/scanner.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>

namespace kiln::mlir {
namespace {

bool is_id_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_id_char(char c) {
  return is_id_start(c) || (c >= '0' && c <= '9') || c == '$' || c == '.';
}

class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  Result<ScanResult> run() {
    while (pos_ < s_.size()) KILN_TRY_STATUS(step());
    if (!open_.empty()) {
      return error_at(open_.back(), "'{' is never closed: the file ends inside it (truncated file?)");
    }
    if (!saw_module_ && result_.info.functions.empty()) {
      return fail(Code::kInvalidArgument,
                  "no StableHLO module found: expected 'module' or 'func.func' (is this MLIR text?)");
    }
    result_.info.dialects.assign(dialects_.begin(), dialects_.end());
    for (const auto& use : alias_uses_) {
      auto it = location_names_.find(use.alias);
      Value& arg = result_.info.functions[use.function].arguments[use.argument];
      if (it != location_names_.end() && arg.name.empty()) arg.name = it->second;
    }
    return std::move(result_);
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
  std::vector<size_t> open_;  // offsets of the '{' still open
  bool expect_op_ = true;     // the next identifier is in operation position
  bool saw_module_ = false;
  std::set<std::string> dialects_;
  ScanResult result_;
  struct PendingVhlo {
    size_t function;
    size_t depth;
  };
  std::vector<PendingVhlo> pending_vhlo_;
  // Names of arguments given through location aliases ("loc(#loc3)"), which
  // are defined at the end of the file: resolved after the scan.
  struct AliasUse {
    size_t function;
    size_t argument;
    std::string alias;
  };
  std::vector<AliasUse> alias_uses_;
  std::map<std::string, std::string, std::less<>> location_names_;

  std::pair<size_t, size_t> line_col(size_t offset) const {
    offset = std::min(offset, s_.size());
    size_t line = 1 + static_cast<size_t>(std::count(s_.begin(), s_.begin() + offset, '\n'));
    size_t line_start = s_.rfind('\n', offset == 0 ? 0 : offset - 1);
    line_start = (line_start == std::string_view::npos || offset == 0) ? 0 : line_start + 1;
    return {line, offset - line_start + 1};
  }

  tl::unexpected<Error> error_at(size_t offset, const std::string& what) const {
    auto [line, col] = line_col(offset);
    return fail(Code::kInvalidArgument, fmt::format("{}:{}: {}", line, col, what));
  }

  char peek(size_t ahead = 0) const { return pos_ + ahead < s_.size() ? s_[pos_ + ahead] : '\0'; }

  void skip_spaces() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  }

  void skip_blanks() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) ++pos_;
  }

  // pos_ at the opening quote; leaves pos_ after the closing one.
  Status skip_string() {
    size_t start = pos_++;
    while (true) {
      const void* hit = std::memchr(s_.data() + pos_, '"', s_.size() - pos_);
      if (!hit) return error_at(start, "string literal is never closed");
      size_t quote = static_cast<const char*>(hit) - s_.data();
      size_t backslashes = 0;
      while (quote - backslashes > start + 1 && s_[quote - backslashes - 1] == '\\') ++backslashes;
      pos_ = quote + 1;
      if (backslashes % 2 == 0) return {};
    }
  }

  Result<std::string_view> read_string() {
    size_t start = pos_;
    KILN_TRY_STATUS(skip_string());
    return s_.substr(start + 1, pos_ - start - 2);
  }

  // Skips a bracketed group starting at pos_ (which holds `open`), honouring
  // nesting and string literals. Used for dense<...>, loc(...), {attrs}.
  Status skip_group(char open, char close) {
    size_t start = pos_;
    int depth = 0;
    while (pos_ < s_.size()) {
      // Jump to the next character that matters.
      const char* p = s_.data() + pos_;
      const char* end = s_.data() + s_.size();
      while (p < end && *p != open && *p != close && *p != '"') ++p;
      pos_ = p - s_.data();
      if (pos_ >= s_.size()) break;
      char c = s_[pos_];
      if (c == '"') {
        KILN_TRY_STATUS(skip_string());
        continue;
      }
      ++pos_;
      if (c == open) ++depth;
      if (c == close && --depth == 0) return {};
    }
    return error_at(start, fmt::format("'{}' is never closed: the file ends inside it (truncated file?)", open));
  }

  std::string_view read_identifier() {
    size_t start = pos_;
    while (pos_ < s_.size() && is_id_char(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  Status step() {
    char c = s_[pos_];
    switch (c) {
      case '\n':
        ++pos_;
        expect_op_ = true;
        return {};
      case ' ': case '\t': case '\r': case ',':
        ++pos_;
        return {};
      case '"':
        return quoted_token();
      case '/':
        if (peek(1) == '/') {
          const void* nl = std::memchr(s_.data() + pos_, '\n', s_.size() - pos_);
          pos_ = nl ? static_cast<const char*>(nl) - s_.data() : s_.size();
        } else {
          ++pos_;
        }
        return {};
      case '{':
        if (s_.compare(pos_, 3, "{-#") == 0) return skip_resources();
        open_.push_back(pos_++);
        expect_op_ = false;
        return {};
      case '}':
        return close_brace();
      case '%':
        return result_list();
      case '#': case '!':
        if (expect_op_ && open_.empty()) return skip_alias_definition();
        ++pos_;
        expect_op_ = false;
        return {};
      default:
        if (is_id_start(c)) return identifier();
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
          return error_at(pos_, fmt::format("unexpected control character 0x{:02x}: this is not MLIR text", c));
        }
        ++pos_;
        expect_op_ = false;
        return {};
    }
  }

  Status quoted_token() {
    bool op_position = expect_op_;
    auto name = KILN_TRY(read_string());
    expect_op_ = false;
    if (!op_position || peek() != '(') return {};
    // Generic operation form: "dialect.op"(...).
    if (name == "func.func" || name == "vhlo.func_v1") {
      result_.needs_reprint = true;
      return {};
    }
    if (name == "builtin.module") saw_module_ = true;
    size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0) dialects_.insert(std::string(name.substr(0, dot)));
    return {};
  }

  Status skip_resources() {
    size_t start = pos_;
    size_t end = s_.find("#-}", pos_);
    if (end == std::string_view::npos) return error_at(start, "'{-#' resource section is never closed");
    pos_ = end + 3;
    return {};
  }

  Status close_brace() {
    if (open_.empty()) return error_at(pos_, "'}' does not match any '{'");
    open_.pop_back();
    ++pos_;
    expect_op_ = false;
    if (!pending_vhlo_.empty() && pending_vhlo_.back().depth == open_.size()) {
      size_t function = pending_vhlo_.back().function;
      pending_vhlo_.pop_back();
      KILN_TRY_STATUS(vhlo_trailing_attributes(function));
    }
    return {};
  }

  // "%0 = op", "%0:2 = op", "%a, %b = op": the operation name follows '='.
  Status result_list() {
    if (!expect_op_) {
      ++pos_;
      return {};
    }
    size_t p = pos_;
    while (p < s_.size() && (is_id_char(s_[p]) || s_[p] == '%' || s_[p] == ':' || s_[p] == '#' ||
                             s_[p] == ',' || s_[p] == ' ')) {
      ++p;
    }
    if (p < s_.size() && s_[p] == '=') {
      pos_ = p + 1;  // stay in operation position
    } else {
      ++pos_;
      expect_op_ = false;
    }
    return {};
  }

  // "#loc1 = loc(...)" or "!alias = type" at the top level: one line, which
  // may contain strings.
  Status skip_alias_definition() {
    size_t start = pos_;
    // Remember `#name = loc("text"...)`: JAX names arguments this way.
    size_t eq = s_.find(" = loc(\"", start);
    size_t nl = s_.find('\n', start);
    if (s_[start] == '#' && eq != std::string_view::npos && eq < nl) {
      size_t begin = eq + 8;
      size_t end = s_.find('"', begin);
      if (end != std::string_view::npos && end < nl) {
        location_names_.emplace(std::string(s_.substr(start, eq - start)), std::string(s_.substr(begin, end - begin)));
      }
    }
    while (pos_ < s_.size() && s_[pos_] != '\n') {
      if (s_[pos_] == '"') {
        KILN_TRY_STATUS(skip_string());
      } else {
        ++pos_;
      }
    }
    return {};
  }

  Status identifier() {
    size_t start = pos_;
    std::string_view id = read_identifier();
    bool op_position = expect_op_;
    expect_op_ = false;
    if (peek() == '<' && (id == "dense" || id == "dense_resource" || id == "array" || id == "sparse")) {
      return skip_group('<', '>');
    }
    if (peek() == '(' && id == "loc") return skip_group('(', ')');
    if (!op_position) return {};
    if (id == "module" || id == "builtin.module") {
      dialects_.insert("builtin");
      return module_header();
    }
    if (id == "func.func") {
      dialects_.insert("func");
      return function_header(start, false);
    }
    if (id == "vhlo.func_v1") {
      dialects_.insert("vhlo");
      return function_header(start, true);
    }
    size_t dot = id.find('.');
    if (dot != std::string_view::npos && dot > 0) dialects_.insert(std::string(id.substr(0, dot)));
    return {};
  }

  Status module_header() {
    while (peek() == ' ') ++pos_;
    if (peek() == '@' && !saw_module_) {
      ++pos_;
      result_.info.name = std::string(KILN_TRY(read_symbol()));
    }
    saw_module_ = true;
    return {};
  }

  Result<std::string_view> read_symbol() {
    if (peek() == '"') return read_string();
    return read_identifier();
  }

  // A type: identifier characters, then an optional balanced <...>.
  Result<std::string_view> read_type() {
    size_t start = pos_;
    if (peek() == '!') ++pos_;
    read_identifier();
    if (peek() == '<') KILN_TRY_STATUS(skip_group('<', '>'));
    if (pos_ == start) return error_at(start, "expected a type");
    return s_.substr(start, pos_ - start);
  }

  // loc("name") or loc("name"(...)): the leading string names a JAX argument.
  // loc(#alias) yields "#alias", resolved at the end.
  Result<std::string> read_location_name() {
    size_t start = pos_;
    KILN_TRY_STATUS(skip_group('(', ')'));
    std::string_view loc = s_.substr(start, pos_ - start);
    if (loc.size() > 2 && loc[1] == '#') return std::string(loc.substr(1, loc.size() - 2));
    if (loc.size() < 3 || loc[1] != '"') return std::string();
    size_t saved = pos_;
    pos_ = start + 1;
    auto name = read_string();  // the group was scanned, so the string is closed
    pos_ = saved;
    return name ? std::string(*name) : std::string();
  }

  static std::string result_info(std::string_view attrs) {
    static constexpr std::string_view kKey = "jax.result_info = \"";
    size_t at = attrs.find(kKey);
    if (at == std::string_view::npos) return {};
    size_t begin = at + kKey.size();
    size_t end = attrs.find('"', begin);
    return end == std::string_view::npos ? std::string() : std::string(attrs.substr(begin, end - begin));
  }

  // One entry of an argument or result list: [%name ":"] type [{attrs}] [loc(...)].
  // A single result written without parentheses ("-> tensor<4xf32> {")
  // cannot carry attributes: the '{' after it opens the function's body.
  Result<Value> list_entry(const std::string& function, std::string* alias = nullptr, bool bare_result = false) {
    Value value;
    if (peek() == '%') {
      ++pos_;
      read_identifier();
      skip_blanks();
      if (peek() != ':') return error_at(pos_, "expected ':' after the argument name in @" + function);
      ++pos_;
      skip_blanks();
    }
    size_t type_at = pos_;
    std::string_view type_text = KILN_TRY(read_type());
    auto type = parse_type(type_text);
    if (!type) return error_at(type_at, type.error().message + " in the signature of @" + function);
    value.type = std::move(*type);
    // Stay on this line: after a declaration's single result type the next
    // line starts a new operation.
    skip_spaces();
    if (peek() == '{' && !bare_result) {
      size_t attrs_at = pos_;
      KILN_TRY_STATUS(skip_group('{', '}'));
      std::string_view attrs = s_.substr(attrs_at, pos_ - attrs_at);
      value.name = result_info(attrs);
      // IREE's reflection keeps the source type of a value whose storage
      // type differs: "tensor<16xi8> {iree.abi.encoding = tensor<16xui8>}".
      static constexpr std::string_view kEncoding = "iree.abi.encoding = ";
      if (size_t at = attrs.find(kEncoding); at != std::string_view::npos) {
        size_t end = attrs.find('>', at);
        if (end != std::string_view::npos) {
          if (auto encoded = parse_type(attrs.substr(at + kEncoding.size(), end + 1 - at - kEncoding.size()))) {
            value.type = std::move(*encoded);
          }
        }
      }
      skip_spaces();
    }
    if (s_.compare(pos_, 4, "loc(") == 0) {
      pos_ += 3;
      std::string loc_name = KILN_TRY(read_location_name());
      if (!loc_name.empty() && loc_name[0] == '#') {
        if (alias) *alias = std::move(loc_name);
      } else if (value.name.empty()) {
        value.name = std::move(loc_name);
      }
      skip_spaces();
    }
    return value;
  }

  Result<std::vector<Value>> value_list(const std::string& function, const char* what, bool arguments) {
    std::vector<Value> values;
    ++pos_;  // '('
    skip_blanks();
    if (peek() == ')') {
      ++pos_;
      return values;
    }
    while (true) {
      skip_blanks();
      std::string alias;
      values.push_back(KILN_TRY(list_entry(function, &alias)));
      skip_blanks();
      if (arguments && !alias.empty()) {
        alias_uses_.push_back({result_.info.functions.size(), values.size() - 1, std::move(alias)});
      }
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() == ')') {
        ++pos_;
        return values;
      }
      if (pos_ >= s_.size()) return error_at(pos_, fmt::format("the file ends inside the {} of @{}", what, function));
      return error_at(pos_, fmt::format("expected ',' or ')' in the {} of @{}", what, function));
    }
  }

  Status function_header(size_t start, bool vhlo) {
    Function function;
    function.line = line_col(start).first;
    skip_blanks();
    if (is_id_start(peek())) {
      std::string_view visibility = read_identifier();
      function.is_public = visibility == "public";
      if (visibility != "public" && visibility != "private" && visibility != "nested") {
        return error_at(pos_ - visibility.size(), "expected '@name' after func.func");
      }
      skip_blanks();
    }
    if (peek() != '@') return error_at(pos_, "expected '@name' after func.func");
    ++pos_;
    function.name = std::string(KILN_TRY(read_symbol()));
    skip_blanks();
    if (peek() != '(') return error_at(pos_, "expected '(' after @" + function.name);
    function.arguments = KILN_TRY(value_list(function.name, "arguments", true));
    skip_blanks();
    if (s_.compare(pos_, 2, "->") == 0) {
      pos_ += 2;
      skip_blanks();
      if (peek() == '(') {
        function.results = KILN_TRY(value_list(function.name, "results", false));
      } else {
        function.results.push_back(KILN_TRY(list_entry(function.name, nullptr, true)));
      }
    }
    result_.info.functions.push_back(std::move(function));
    if (vhlo) pending_vhlo_.push_back({result_.info.functions.size() - 1, open_.size()});
    return {};
  }

  // VHLO prints visibility and result attributes after the body:
  // "} {arg_attrs = ..., res_attrs = ..., sym_visibility = #vhlo.string_v1<"private">}".
  Status vhlo_trailing_attributes(size_t index) {
    size_t p = pos_;
    while (p < s_.size() && s_[p] == ' ') ++p;
    if (p >= s_.size() || s_[p] != '{') return {};
    pos_ = p;
    KILN_TRY_STATUS(skip_group('{', '}'));
    std::string_view attrs = s_.substr(p, pos_ - p);
    Function& function = result_.info.functions[index];
    static constexpr std::string_view kVisibility = "sym_visibility = #vhlo.string_v1<\"";
    if (size_t at = attrs.find(kVisibility); at != std::string_view::npos) {
      function.is_public = attrs.compare(at + kVisibility.size(), 6, "public") == 0;
    }
    size_t res = attrs.find("res_attrs = ");
    for (size_t i = 0; res != std::string_view::npos && i < function.results.size(); ++i) {
      size_t dict = attrs.find("#vhlo.dict_v1<{", res);
      if (dict == std::string_view::npos) break;
      size_t dict_end = attrs.find("}>", dict);
      std::string_view entry = attrs.substr(dict, dict_end - dict);
      static constexpr std::string_view kInfo = "\"jax.result_info\"> = #vhlo.string_v1<\"";
      if (size_t at = entry.find(kInfo); at != std::string_view::npos && function.results[i].name.empty()) {
        size_t begin = at + kInfo.size();
        function.results[i].name = std::string(entry.substr(begin, entry.find('"', begin) - begin));
      }
      res = dict_end;
    }
    return {};
  }
};

}  // namespace

Result<ScanResult> scan_text(std::string_view text) { return Scanner(text).run(); }

}  // namespace kiln::mlir
