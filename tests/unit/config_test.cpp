#include "kiln/config/config.h"
#include "kiln/config/settings.h"

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

TEST(Settings, DefaultsAreTyped) {
  auto s = settings_from(defaults());
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->compile_timeout, 1800);
  EXPECT_EQ(s->executor, "local");
  EXPECT_EQ(s->docker_memory, 4ull << 30);
  EXPECT_FALSE(s->docker_cpus);
  EXPECT_EQ(s->docker_pids, 256);
  EXPECT_EQ(s->jobs, 0);
  EXPECT_FALSE(s->memory_budget);
  EXPECT_TRUE(s->cache);
  EXPECT_EQ(s->cache_max_size, 5ull << 30);
  EXPECT_TRUE(s->tuning);
}

TEST(Settings, ParsedOnceWithUnits) {
  Config c = defaults();
  ASSERT_TRUE(apply_file(c, "kiln.conf", "compile_timeout = 10m\njobs = 4\nmemory_budget = 500M\ncache = no\n"
                                         "docker_cpus = 2\nopt_level = O2\n"));
  auto s = settings_from(c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s->compile_timeout, 600);
  EXPECT_EQ(s->jobs, 4);
  EXPECT_EQ(*s->memory_budget, 500ull << 20);
  EXPECT_FALSE(s->cache);
  EXPECT_EQ(*s->docker_cpus, 2);
  EXPECT_EQ(s->opt_level, "O2");
}

TEST(Settings, ErrorsNameTheKeyAndWhereTheValueCameFrom) {
  Config c = defaults();
  ASSERT_TRUE(apply_file(c, "kiln.conf", "# limits\njobs = lots\n"));
  auto s = settings_from(c);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("jobs = 'lots'"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("file kiln.conf:2"), std::string::npos) << s.error().message;

  Config e = defaults();
  e.set("compile_timeout", "soon", "env KILN_COMPILE_TIMEOUT");
  s = settings_from(e);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("env KILN_COMPILE_TIMEOUT"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("duration"), std::string::npos) << s.error().message;
}

TEST(Settings, SwitchesAndChoicesAreChecked) {
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"cache", "maybe"}, {"tuning", "2"}, {"executor", "podman"}, {"opt_level", "O9"},
           {"cache_max_size", "big"}, {"docker_pids", "0"}, {"docker_tmpfs", "lots"}}) {
    Config c = defaults();
    c.set(key, value, "command line");
    auto s = settings_from(c);
    ASSERT_FALSE(s) << key << " = " << value;
    EXPECT_NE(s.error().message.find("setting " + key), std::string::npos) << s.error().message;
  }
}

}  // namespace kiln::config
