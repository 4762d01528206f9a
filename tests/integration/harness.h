// Black-box tests: each runs the real kiln binary in its own temporary
// folder (kept, and its path printed, when the test fails).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kiln/util/file.h"
#include "kiln/util/subprocess.h"

namespace kiln::testing {

namespace fs = std::filesystem;

struct Outcome {  // what one program run gave
  int status;
  std::string out;
  std::string err;
  nlohmann::json json() const;  // stdout parsed as JSON (fails the test if it is not)
};

class KilnTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs `kiln args...` in the test's folder.
  Outcome kiln(const std::vector<std::string>& args, const std::vector<std::string>& env = {});
  // Runs any program in the test's folder.
  Outcome run(const std::vector<std::string>& argv);

  fs::path dir() const { return dir_->path(); }
  static fs::path model(const std::string& file) { return fs::path(KILN_TEST_MODELS) / file; }
  static fs::path venv() { return fs::path(KILN_SOURCE_DIR) / ".venv"; }
  static fs::path runtime_tool(const std::string& name);
  void write(const fs::path& rel, const std::string& contents);
  // Files in a folder, names only, sorted.
  static std::vector<std::string> listing(const fs::path& folder);

 private:
  std::unique_ptr<util::TempDir> dir_;
};

}  // namespace kiln::testing
