#include "kiln/cache/key.h"

#include "kiln/util/hash.h"
#include "kiln/util/strings.h"

namespace kiln::cache {
namespace {

// One section: tag, value length, value. Lengths are fixed-width decimal so
// the framing itself cannot be forged by a value.
void section(std::string& out, const std::string& tag, const std::string& value) {
  char length[24];
  std::snprintf(length, sizeof length, "%020zu", value.size());
  out += tag;
  out += '\0';
  out += length;
  out += value;
}

}  // namespace

std::vector<std::string> normalize_flags(const std::vector<std::string>& flags) {
  std::vector<std::string> out;
  for (size_t i = 0; i < flags.size(); ++i) {
    std::string f(util::trim(flags[i]));
    if (f.empty()) continue;
    if (f == "-o" || f == "--output") {
      ++i;  // and its value
      continue;
    }
    if (util::starts_with(f, "-o=") || util::starts_with(f, "--output=")) continue;
    // "--flag value" (a value that is not itself a flag) becomes "--flag=value".
    if (util::starts_with(f, "--") && f.find('=') == std::string::npos && i + 1 < flags.size() &&
        !util::starts_with(util::trim(flags[i + 1]), "-")) {
      f += "=" + std::string(util::trim(flags[++i]));
    }
    out.push_back(f);
  }
  return out;
}

std::string key_of(const KeyParts& p) {
  std::string bytes;
  section(bytes, "kiln.cache.format", std::to_string(kFormatVersion));
  section(bytes, "input.sha256", p.input_sha256);
  section(bytes, "flags.count", std::to_string(p.flags.size()));
  for (const auto& f : p.flags) section(bytes, "flag", f);
  section(bytes, "target", p.target);
  section(bytes, "iree.release", p.iree_release);
  section(bytes, "iree.build", p.iree_build);
  section(bytes, "iree.revision", p.iree_revision);
  // Only when set, so that keys of untuned compiles stay as they were.
  if (!p.tuning.empty()) section(bytes, "tuning", p.tuning);
  return util::sha256_hex(bytes);
}

nlohmann::json to_json(const KeyParts& p) {
  return {{"format", kFormatVersion}, {"input_sha256", p.input_sha256}, {"flags", p.flags}, {"target", p.target},
          {"iree", {{"release", p.iree_release}, {"build", p.iree_build}, {"revision", p.iree_revision}}},
          {"tuning", p.tuning}};
}

KeyParts parts_from_json(const nlohmann::json& j) {
  KeyParts p;
  p.input_sha256 = j.value("input_sha256", "");
  p.flags = j.value("flags", std::vector<std::string>{});
  p.target = j.value("target", "");
  if (j.contains("iree")) {
    p.iree_release = j["iree"].value("release", "");
    p.iree_build = j["iree"].value("build", "");
    p.iree_revision = j["iree"].value("revision", "");
  }
  p.tuning = j.value("tuning", "");
  return p;
}

std::vector<std::string> differing_parts(const KeyParts& a, const KeyParts& b) {
  std::vector<std::string> out;
  if (a.input_sha256 != b.input_sha256) out.push_back("input");
  if (a.flags != b.flags) out.push_back("flags");
  if (a.target != b.target) out.push_back("target");
  if (a.iree_release != b.iree_release || a.iree_build != b.iree_build || a.iree_revision != b.iree_revision) {
    out.push_back("iree");
  }
  if (a.tuning != b.tuning) out.push_back("tuning");
  return out;
}

}  // namespace kiln::cache
