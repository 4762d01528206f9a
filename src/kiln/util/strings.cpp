#include "kiln/util/strings.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <locale>

namespace kiln::util {

std::vector<std::string> split(std::string_view text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    parts.emplace_back(text.substr(start, end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

std::string to_lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  std::string lower = to_lower(word);
  for (const auto& candidate : candidates) {
    // The distance is at least the difference in length: a word far longer
    // than every candidate (a pasted line) costs no quadratic comparison.
    size_t gap = lower.size() > candidate.size() ? lower.size() - candidate.size() : candidate.size() - lower.size();
    if (gap > best_distance) continue;
    size_t d = edit_distance(lower, to_lower(candidate));
    // On a tie, a candidate with the same first letter is the likelier typo.
    bool tie_break = d == best_distance && !best.empty() && !lower.empty() &&
                     to_lower(best)[0] != lower[0] && to_lower(candidate)[0] == lower[0];
    if (d < best_distance || tie_break) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 4) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, unit == 0 ? "%.0f %s" : "%.1f %s", bytes, units[unit]);
  return buf;
}

std::optional<uint64_t> parse_size(const std::string& text) {
  char* end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  std::string unit = to_lower(trim(end ? end : ""));
  double scale = unit.empty() || unit == "b" ? 1
                 : unit == "k" || unit == "kb" || unit == "kib" ? 1024.0
                 : unit == "m" || unit == "mb" || unit == "mib" ? 1024.0 * 1024
                 : unit == "g" || unit == "gb" || unit == "gib" ? 1024.0 * 1024 * 1024
                 : unit == "t" || unit == "tb" || unit == "tib" ? 1024.0 * 1024 * 1024 * 1024
                                                                : -1;
  if (end == text.c_str() || scale < 0 || !(v >= 0)) return std::nullopt;
  return static_cast<uint64_t>(v * scale);
}

void fill_narrow_cache() {
  const auto& ctype = std::use_facet<std::ctype<char>>(std::locale());
  for (int c = 0; c < 256; ++c) (void)ctype.narrow(static_cast<char>(c), '\0');
}

}  // namespace kiln::util
