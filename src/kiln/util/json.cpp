#include "kiln/util/json.h"

#include <fmt/format.h>

namespace kiln::util {

int json_depth(std::string_view text, int limit) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest >= limit) return deepest;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

Result<nlohmann::json> parse_json(std::string_view text, const std::string& what) {
  if (int depth = json_depth(text); depth > kMaxJsonDepth) {
    return fail(Code::kInvalidArgument,
                fmt::format("{} nests arrays and objects more than {} levels deep; kiln reads at most {}", what,
                            depth - 1, kMaxJsonDepth));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // syntax, and numbers too large to hold
    return fail(Code::kInvalidArgument, fmt::format("{} is not valid JSON: {}", what, e.what()));
  }
}

}  // namespace kiln::util
