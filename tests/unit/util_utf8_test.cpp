#include "kiln/util/utf8.h"

#include <gtest/gtest.h>

namespace kiln::util {

TEST(Utf8, WellFormedTextIsKept) {
  EXPECT_EQ(to_valid_utf8("plain"), "plain");
  EXPECT_EQ(to_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\xA5"), "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x94\xA5");
  EXPECT_EQ(to_valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(Utf8, EachBadByteBecomesOneReplacementCharacter) {
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(to_valid_utf8("a\xFF" "b"), "a" + r + "b");
  EXPECT_EQ(to_valid_utf8("\xC3"), r) << "a sequence cut short";
  EXPECT_EQ(to_valid_utf8("\xC0\xAF"), r + r) << "overlong";
  EXPECT_EQ(to_valid_utf8("\xED\xA0\x80"), r + r + r) << "a surrogate";
  EXPECT_EQ(to_valid_utf8("\xF4\x90\x80\x80"), r + r + r + r) << "past U+10FFFF";
}

}  // namespace kiln::util
