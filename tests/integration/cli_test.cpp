#include "harness.h"

namespace kiln::testing {
namespace {

class Cli : public KilnTest {};

TEST_F(Cli, TargetsListsTheReleaseAndHopper) {
  Outcome r = kiln({"targets"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("Targets of IREE 3.13.0"), std::string::npos);
  EXPECT_NE(r.out.find("h100 (sm_90)"), std::string::npos);
  auto j = kiln({"targets", "--json"}).json();
  for (const auto& family : j["families"]) EXPECT_TRUE(family["available"].get<bool>()) << family.dump();
}

TEST_F(Cli, DoctorFindsThePinnedToolchain) {
  Outcome r = kiln({"doctor", "--json"});
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  auto j = r.json();
  EXPECT_EQ(j["pinned_iree_release"], "3.13.0");
  EXPECT_EQ(j["checks"][0]["name"], "IREE compiler");
  EXPECT_EQ(j["checks"][0]["status"], "ok");
  EXPECT_NE(j["checks"][0]["detail"].get<std::string>().find("release 3.13.0"), std::string::npos);
}

TEST_F(Cli, DoctorExplainsAMissingToolchain) {
  Outcome r = kiln({"doctor"}, {"KILN_IREE_DIR=" + (dir() / "nowhere").string()});
  EXPECT_EQ(r.status, 4);
  EXPECT_NE(r.out.find("fix: run scripts/setup.sh"), std::string::npos) << r.out;
}

TEST_F(Cli, SchemaIsJson) {
  auto j = kiln({"schema"}).json();
  EXPECT_EQ(j["title"], "kiln compile job, version 1");
}

TEST_F(Cli, UsageErrors) {
  Outcome typo = kiln({"inspcet", "x"});
  EXPECT_EQ(typo.status, 2);
  EXPECT_NE(typo.err.find("did you mean 'inspect'"), std::string::npos) << typo.err;
  Outcome no_target = kiln({"compile", model("mlp.mlir").string()});
  EXPECT_EQ(no_target.status, 2);
  EXPECT_NE(no_target.err.find("no target"), std::string::npos);
  Outcome bad_option = kiln({"compile", "--frobnicate"});
  EXPECT_EQ(bad_option.status, 2);
  Outcome bad_config = kiln({"targets"}, {"KILN_CONFIG=" + (dir() / "kiln.conf").string()});
  EXPECT_EQ(bad_config.status, 3) << bad_config.err;
  write("kiln.conf", "compile_timout = 10\n");
  Outcome typo_config = kiln({"targets"}, {"KILN_CONFIG=" + (dir() / "kiln.conf").string()});
  EXPECT_EQ(typo_config.status, 2);
  EXPECT_NE(typo_config.err.find("kiln.conf:1: unknown setting 'compile_timout' (did you mean 'compile_timeout'?)"),
            std::string::npos) << typo_config.err;
}

TEST_F(Cli, BadSettingsStopEveryCommandNamingKeyAndOrigin) {
  Outcome env = kiln({"targets"}, {"KILN_JOBS=lots"});
  EXPECT_EQ(env.status, 2);
  EXPECT_NE(env.err.find("setting jobs = 'lots' (env KILN_JOBS) is not a number"), std::string::npos) << env.err;
  write("kiln.conf", "# limits\ncompile_timeout = soon\n");
  Outcome file = kiln({"inspect", model("mlp.mlir").string()}, {"KILN_CONFIG=" + (dir() / "kiln.conf").string()});
  EXPECT_EQ(file.status, 2);
  EXPECT_NE(file.err.find("kiln.conf:2) is not a duration"), std::string::npos) << file.err;
  Outcome good = kiln({"targets"}, {"KILN_COMPILE_TIMEOUT=10m", "KILN_CACHE=off", "KILN_JOBS=2"});
  EXPECT_EQ(good.status, 0) << good.err;
}

TEST_F(Cli, HelpExitsZero) {
  EXPECT_EQ(kiln({"--help"}).status, 0);
  EXPECT_EQ(kiln({"compile", "--help"}).status, 0);
}

}  // namespace
}  // namespace kiln::testing
