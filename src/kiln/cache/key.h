// Cache keys. A key is the SHA-256 of tagged sections: every part that can
// change the compiled module (input bytes, compiler flags, target, IREE
// release and build, kiln's cache format) is written as "tag, length, value",
// so two different sets of parts can never run together into the same bytes.
// The parts are kept next to each entry, so a miss can be explained.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kiln::cache {

// Bumped whenever the entry layout or the key recipe changes.
inline constexpr int kFormatVersion = 1;

struct KeyParts {
  std::string input_sha256;
  std::vector<std::string> flags;  // normalized: target flags then option flags, no input or output paths
  std::string target;              // the resolved target slug, "cuda-sm_90"
  std::string iree_release;
  std::string iree_build;
  std::string iree_revision;
  // The tuning record's module digest, when a tuning record was applied
  // (its configuration files are read by path, so their bytes count here).
  std::string tuning;
};

// Whitespace trimmed, "--flag value" pairs joined to "--flag=value", and
// paths the compiler reads or writes dropped: what is left changes output.
std::vector<std::string> normalize_flags(const std::vector<std::string>& flags);

std::string key_of(const KeyParts& parts);

nlohmann::json to_json(const KeyParts& parts);
KeyParts parts_from_json(const nlohmann::json& j);

// The names of the parts that differ ("input", "flags", "target", "iree", "tuning").
std::vector<std::string> differing_parts(const KeyParts& a, const KeyParts& b);

}  // namespace kiln::cache
