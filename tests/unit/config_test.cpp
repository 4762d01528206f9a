#include "kiln/config/config.h"

#include <gtest/gtest.h>

namespace kiln::config {

Config defaults() {
  Config c;
  for (const auto& k : keys()) c.set(k.name, k.default_value, "default");
  return c;
}

TEST(Config, FileOverridesDefaultsAndRecordsOrigin) {
  Config c = defaults();
  ASSERT_TRUE(apply_file(c, "kiln.conf", "# comment\n\ncompile_timeout = 120\n"));
  EXPECT_EQ(c.get("compile_timeout"), "120");
  EXPECT_EQ(c.origins["compile_timeout"], "file kiln.conf:3");
}

TEST(Config, UnknownKeyNamesFileLineAndSuggestion) {
  Config c = defaults();
  auto st = apply_file(c, "kiln.conf", "compile_timout = 5\n");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("kiln.conf:1"), std::string::npos);
  EXPECT_NE(st.error().message.find("did you mean 'compile_timeout'"), std::string::npos);
}

TEST(Config, LineWithoutEqualsIsAnError) {
  Config c = defaults();
  auto st = apply_file(c, "k.conf", "iree_dir\n");
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("k.conf:1: expected 'key = value'"), std::string::npos);
}

TEST(Config, Durations) {
  EXPECT_EQ(*parse_duration("t", "90"), 90);
  EXPECT_EQ(*parse_duration("t", "2m"), 120);
  EXPECT_EQ(*parse_duration("t", "1h"), 3600);
  EXPECT_FALSE(parse_duration("t", "soon"));
  EXPECT_FALSE(parse_duration("t", "-5"));
  EXPECT_FALSE(parse_duration("t", "5 days"));
}

}  // namespace kiln::config
