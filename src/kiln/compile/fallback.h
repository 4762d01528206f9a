// Failures of the pinned compiler that kiln recognises, and what builds the
// program instead. This is the one table of them: when a compile fails with
// an entry's symptom on a target of its backend, kiln compiles again with
// the entry's flags added, records the fallback in the module's metadata
// ("fallbacks", docs/metadata.md) and says so. Each entry has a regression
// test that compiles a small real program which triggers it
// (tests/integration/fallback_test.cpp).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kiln/target/target.h"

namespace kiln::compile {

struct Fallback {
  std::string_view name;     // "no-vector-distribution"
  target::Backend backend;   // the targets it applies to
  std::string_view symptom;  // a line of the compiler's stderr contains it
  std::vector<std::string> flags;  // added after every other flag
  std::string_view why;      // what failed and what the flags do, for users
};

// Bumped whenever an entry is added, removed or changed: it joins the cache
// key of every compile the table can apply to, so a module built under an
// older table is not served as one built under this one.
inline constexpr int kFallbackTableVersion = 1;

const std::vector<Fallback>& fallbacks();

// Whether any entry applies to the backend.
bool may_fall_back(target::Backend backend);

// The first entry for this backend whose symptom is in `err` and which is
// not among `tried`; null when there is none.
const Fallback* match_fallback(std::string_view err, target::Backend backend, const std::vector<std::string>& tried);

// The first line of `err` that holds the entry's symptom, trimmed and
// capped: what the metadata quotes.
std::string symptom_line(std::string_view err, const Fallback& fallback);

// One applied fallback as the metadata records it.
nlohmann::json fallback_json(const Fallback& fallback, const std::string& line);

}  // namespace kiln::compile
