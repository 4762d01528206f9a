// Small string helpers that know nothing about kiln.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::util {

std::vector<std::string> split(std::string_view text, char sep);
std::string join(const std::vector<std::string>& parts, std::string_view sep);
std::string_view trim(std::string_view text);
std::string to_lower(std::string_view text);
bool starts_with(std::string_view text, std::string_view prefix);
// A letter, a digit or "_": a character of an identifier.
bool is_word_char(char c);

// Levenshtein distance, for "did you mean ...?" suggestions.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word`, or "" when none is close enough to be a
// plausible typo (distance at most a third of the word's length, at least 2).
std::string nearest(std::string_view word, const std::vector<std::string>& candidates);

// Human-readable byte count: "1.5 MiB".
std::string human_bytes(double bytes);

// libstdc++ fills std::ctype<char>'s narrow() cache lazily and without a
// lock, and std::regex writes it while compiling a pattern (valijson compiles
// the job schema's patterns in every thread that validates a job): a data
// race ThreadSanitizer reports. Filling the cache of the global locale once,
// before any thread starts, leaves only reads. main() calls it first.
void fill_narrow_cache();

// "5G", "500M", "1024" (bytes) -> bytes; units are powers of 1024. Empty
// when the text is not a size.
std::optional<uint64_t> parse_size(const std::string& text);

}  // namespace kiln::util
