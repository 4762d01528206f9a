// JSON from outside kiln (job files, uploads, records a person can edit):
// parsed only after a linear scan has bounded its nesting, because parsing,
// schema validation and destruction all recurse once per level.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "kiln/util/error.h"

namespace kiln::util {

// Deeper than any real job or record; far below what exhausts a stack.
inline constexpr int kMaxJsonDepth = 64;

// The deepest nesting of arrays and objects in `text`, counted outside
// strings; stops counting past `limit`.
int json_depth(std::string_view text, int limit = kMaxJsonDepth + 1);

// Parses `text`; `what` names it in errors ("job.json", "the 'options' field").
Result<nlohmann::json> parse_json(std::string_view text, const std::string& what);

}  // namespace kiln::util
