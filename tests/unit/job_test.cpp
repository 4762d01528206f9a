#include "kiln/job/job.h"

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::job {

class JobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-job-test-"));
    fs::create_directories(dir() / "models");
    ASSERT_TRUE(util::write_file_atomic(dir() / "models/a.mlir", "module {}"));
    ASSERT_TRUE(util::write_file_atomic(dir() / "models/b.vhlo.mlirbc", "ML\xEFR"));
  }
  fs::path dir() const { return dir_->path(); }
  Result<Job> load_text(const std::string& text) {
    EXPECT_TRUE(util::write_file_atomic(dir() / "job.json", text));
    return load(dir() / "job.json");
  }
  std::string error_of(const std::string& text) {
    auto job = load_text(text);
    EXPECT_FALSE(job) << text;
    return job ? "" : job.error().message;
  }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_F(JobTest, SchemaIsValidJsonWithAVersion) {
  auto schema = nlohmann::json::parse(schema_text());
  EXPECT_EQ(schema["properties"]["version"]["const"], 1);
  EXPECT_EQ(schema["$id"], "https://kiln.dev/schemas/job-v1.json");
}

TEST_F(JobTest, LoadsAndResolvesRelativeToTheJobFile) {
  auto job = load_text(R"({"version": 1, "inputs": ["models/a.mlir", {"path": "models/b.vhlo.mlirbc", "name": "bee"}],
    "targets": ["cpu", "cuda:h100"], "options": {"opt_level": "O3", "data_tiling": false,
    "extra_flags": ["--iree-opt-const-eval=false"], "timeout_seconds": 90}, "output_dir": "build/out"})");
  ASSERT_TRUE(job) << job.error().message;
  ASSERT_EQ(job->inputs.size(), 2u);
  EXPECT_EQ(job->inputs[0].path, dir() / "models/a.mlir");
  EXPECT_EQ(job->inputs[0].name, "a");
  EXPECT_EQ(job->inputs[1].name, "bee");
  EXPECT_EQ(job->targets[1].arch, "sm_90");
  EXPECT_EQ(job->options.opt_level, "O3");
  EXPECT_EQ(job->options.data_tiling, false);
  EXPECT_EQ(job->options.timeout.count(), 90000);
  EXPECT_EQ(job->output_dir, dir() / "build/out");
}

TEST_F(JobTest, DefaultOutputFolderIsOutNextToTheJob) {
  auto job = load_text(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"]})");
  ASSERT_TRUE(job);
  EXPECT_EQ(job->output_dir, dir() / "out");
}

TEST_F(JobTest, SchemaErrorsNameThePathWhatWasFoundAndWhatWasExpected) {
  std::string e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu", 7]})");
  EXPECT_NE(e.find("at /targets/1"), std::string::npos) << e;
  EXPECT_NE(e.find("found 7"), std::string::npos) << e;
  e = error_of(R"({"version": 2, "inputs": ["models/a.mlir"], "targets": ["cpu"]})");
  EXPECT_NE(e.find("at /version"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": [], "targets": ["cpu"], "extra": true})");
  EXPECT_NE(e.find("at /inputs"), std::string::npos) << e;
  EXPECT_NE(e.find("extra"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"], "options": {"opt_level": "O9"}})");
  EXPECT_NE(e.find("at /options/opt_level"), std::string::npos) << e;
  e = error_of(R"({"inputs": ["models/a.mlir"], "targets": ["cpu"]})");
  EXPECT_NE(e.find("version"), std::string::npos) << e;
}

// The schema's patterns run in std::regex, which recurses per character it
// repeats: a megabyte-long target once overflowed the stack. The target
// pattern bounds each repetition, so such a target is a schema error.
TEST_F(JobTest, AHugeTargetIsASchemaErrorNotACrash) {
  std::string target = "cuda:" + std::string(2'000'000, 'a');
  std::string e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": [")" + target + R"("]})");
  EXPECT_NE(e.find("at /targets/0"), std::string::npos) << e.substr(0, 200);
}

TEST_F(JobTest, SyntaxErrorsGiveLineAndColumn) {
  std::string e = error_of("{\n  \"version\": 1,\n  \"inputs\": [\"a\",]\n}");
  EXPECT_NE(e.find("job.json:3:"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid JSON"), std::string::npos) << e;
}

TEST_F(JobTest, SemanticErrorsNameTheEntry) {
  std::string e = error_of(R"({"version": 1, "inputs": ["models/missing.mlir"], "targets": ["cpu"]})");
  EXPECT_NE(e.find("at /inputs/0"), std::string::npos) << e;
  EXPECT_NE(e.find("no such file"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu", "cuda:b200"]})");
  EXPECT_NE(e.find("at /targets/1"), std::string::npos) << e;
  EXPECT_NE(e.find("nearest working choice"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cuda:h100", "cuda:sm_90"]})");
  EXPECT_NE(e.find("same target"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": ["models/a.mlir", {"path": "models/b.vhlo.mlirbc", "name": "a"}], "targets": ["cpu"]})");
  EXPECT_NE(e.find("share the output name"), std::string::npos) << e;
}

TEST_F(JobTest, OutputNamesCannotLeaveTheOutputFolder) {
  std::string e = error_of(R"({"version": 1, "inputs": [{"path": "models/a.mlir", "name": "../evil"}], "targets": ["cpu"]})");
  EXPECT_NE(e.find("at /inputs/0"), std::string::npos) << e;
  e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu:x86_64:../../x"]})");
  EXPECT_NE(e.find("/targets/0"), std::string::npos) << e;
}

TEST_F(JobTest, BindGivesOneBindingPerEntryAndRefusesRepeats) {
  auto job = load_text(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"],
    "options": {"bind": [{"b": 8}, {"n": 16, "b": 4}]}})");
  ASSERT_TRUE(job) << job.error().message;
  ASSERT_EQ(job->bindings.size(), 2u);
  EXPECT_EQ(mlir::binding_slug(job->bindings[0]), "b8");
  EXPECT_EQ(mlir::binding_slug(job->bindings[1]), "b4_n16");
  EXPECT_TRUE(load_text(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"]})")->bindings.empty());
  std::string e = error_of(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"],
    "options": {"bind": [{"b": 8}, {"b": 8}]}})");
  EXPECT_NE(e.find("bind lists {\"b\":8} twice"), std::string::npos) << e;
  for (const char* bad : {R"([{"b": 0}])", R"([{}])", R"([])", R"({"b": 8})", R"([{"b": 2.5}])", R"([{"x-y": 2}])"}) {
    e = error_of(std::string(R"({"version": 1, "inputs": ["models/a.mlir"], "targets": ["cpu"], "options": {"bind": )") +
                 bad + "}}");
    EXPECT_NE(e.find("/options/bind"), std::string::npos) << bad << ": " << e;
  }
}

}  // namespace kiln::job
