#include "kiln/util/strings.h"

#include <chrono>

#include <gtest/gtest.h>

namespace kiln::util {

TEST(Strings, SplitKeepsEmptyParts) {
  EXPECT_EQ(split("a::b", ':'), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split("", ':'), (std::vector<std::string>{""}));
}

TEST(Strings, TrimAndLower) {
  EXPECT_EQ(trim("  x y \n"), "x y");
  EXPECT_EQ(to_lower("H100"), "h100");
}

TEST(Strings, EditDistance) {
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("same", "same"), 0u);
}

TEST(Strings, NearestSuggestsCloseWordsOnly) {
  std::vector<std::string> words = {"compile", "inspect", "check"};
  EXPECT_EQ(nearest("compil", words), "compile");
  EXPECT_EQ(nearest("inspcet", words), "inspect");
  EXPECT_EQ(nearest("zzzzzzzz", words), "");
}

TEST(Strings, NearestIsQuickOnAWordFarLongerThanAnyCandidate) {
  // A pasted megabyte line as a settings key: no quadratic comparison.
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(nearest(std::string(1 << 20, 'c') + "ompile", {"compile", "inspect"}), "");
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), 1.0);
}

TEST(Strings, NearestPrefersSameFirstLetterOnTies) {
  EXPECT_EQ(nearest("h10", {"a10", "h100"}), "h100");
}

TEST(Strings, HumanBytes) {
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(1536), "1.5 KiB");
  EXPECT_EQ(human_bytes(3.0 * 1024 * 1024), "3.0 MiB");
}

}  // namespace kiln::util
