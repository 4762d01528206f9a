#include "harness.h"

#include <algorithm>

#include "kiln/util/file.h"

namespace kiln::testing {

nlohmann::json Outcome::json() const {
  try {
    return nlohmann::json::parse(out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "stdout is not JSON (" << e.what() << "):\n" << out << "\nstderr:\n" << err;
    return {};
  }
}

void KilnTest::SetUp() {
  auto d = util::TempDir::create(util::temp_root(), "kiln-it-");
  ASSERT_TRUE(d);
  dir_ = std::make_unique<util::TempDir>(std::move(*d));
}

void KilnTest::TearDown() {
  if (HasFailure()) {
    std::cerr << "kept the test folder: " << dir().string() << "\n";
    dir_->keep();
  }
}

Outcome KilnTest::run(const std::vector<std::string>& argv) {
  auto r = util::run_process({.argv = argv, .cwd = dir(), .timeout = std::chrono::minutes(4)});
  if (!r) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << r.error().message;
    return {-1, "", ""};
  }
  EXPECT_FALSE(r->timed_out) << argv[0] << " timed out";
  return {r->term_signal ? 128 + r->term_signal : r->exit_status, r->out, r->err};
}

Outcome KilnTest::kiln(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {KILN_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  // Each test has its own cache, so tests cannot see each other's artifacts.
  std::vector<std::string> environment = {"KILN_CACHE_DIR=" + (dir() / "cache").string(),
                                          "KILN_TUNING_DIR=" + (dir() / "tuning").string()};
  environment.insert(environment.end(), env.begin(), env.end());
  auto r = util::run_process({.argv = argv, .cwd = dir(), .env_overrides = environment, .timeout = std::chrono::minutes(4)});
  if (!r) {
    ADD_FAILURE() << r.error().message;
    return {-1, "", ""};
  }
  return {r->term_signal ? 128 + r->term_signal : r->exit_status, r->out, r->err};
}

fs::path KilnTest::runtime_tool(const std::string& name) {
  for (const auto& entry : fs::directory_iterator(venv() / "lib")) {
    fs::path p = entry.path() / "site-packages/iree/_runtime_libs" / name;
    if (fs::exists(p)) return p;
  }
  ADD_FAILURE() << "no " << name << " in " << venv();
  return {};
}

void KilnTest::write(const fs::path& rel, const std::string& contents) {
  fs::create_directories((dir() / rel).parent_path());
  ASSERT_TRUE(util::write_file_atomic(dir() / rel, contents));
}

std::vector<std::string> KilnTest::listing(const fs::path& folder) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(folder, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace kiln::testing
