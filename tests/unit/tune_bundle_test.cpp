#include "kiln/tune/bundle.h"

#include <gtest/gtest.h>

#include "kiln/compile/compile.h"
#include "kiln/tune/tuner.h"
#include "kiln/util/file.h"

namespace kiln::tune {

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-bundle-test-"));
    bundle_.dir = dir_->path() / "b";
    fs::create_directories(bundle_.dir / "configs" / "d0");
    bundle_.round = 2;
    bundle_.iree_release = "3.13.0";
    bundle_.target_spec = "cuda:h100";
    bundle_.target_slug = "cuda-sm_90";
    bundle_.backend = "cuda";
    bundle_.runtime_device = "cuda";
    bundle_.gpu = "h100";
    bundle_.program_name = "mlp";
    bundle_.program_sha256 = std::string(64, 'a');
    bundle_.precision = "highest";
    bundle_.function = "main";
    Candidate ref{"reference", "reference", "the compiler's own choices", "modules/reference.cuda-sm_90.vmfb", {}, {}, {}};
    Candidate tuned{"d0@caching", "combined", "main_dispatch_0: workgroup=[64,64,1]", "modules/d0.cuda-sm_90.vmfb",
                    {"--iree-opt-level=O3"}, {{"main_dispatch_0", "configs/d0/main_dispatch_0.mlir"}},
                    {{"main_dispatch_0", "workgroup=[64,64,1]"}}, "caching", {"--device_allocator=caching"}};
    bundle_.candidates = {ref, tuned};
    EXPECT_TRUE(util::write_file_atomic(bundle_.dir / "configs" / "d0" / "main_dispatch_0.mlir", "hal.executable @main_dispatch_0"));
    EXPECT_TRUE(write_bundle(bundle_));
  }
  Results results(double ref_ms, double tuned_ms, const std::string& tuned_status = "ok") {
    Results r;
    r.bundle_digest = *bundle_digest(bundle_.dir);
    r.device_uri = "cuda";
    r.device_name = "NVIDIA H100 80GB HBM3";
    r.measured_at = "2026-11-25T00:00:00Z";
    r.measurements = {{"reference", "ok", ref_ms, 0, 0, ""}, {"d0@caching", tuned_status, tuned_ms, 0, 0, ""}};
    return r;
  }
  Status write_results(const Results& r) {
    return util::write_file_atomic(bundle_.dir / "results.json", to_json(r).dump(2));
  }
  std::unique_ptr<util::TempDir> dir_;
  Bundle bundle_;
};

TEST_F(BundleTest, RoundTrips) {
  auto b = read_bundle(bundle_.dir);
  ASSERT_TRUE(b) << b.error().message;
  EXPECT_EQ(b->round, 2);
  EXPECT_EQ(b->gpu, "h100");
  ASSERT_EQ(b->candidates.size(), 2u);
  EXPECT_EQ(b->candidates[1].configs.at("main_dispatch_0"), "configs/d0/main_dispatch_0.mlir");
  EXPECT_EQ(b->candidates[1].runtime_flags, std::vector<std::string>{"--device_allocator=caching"});
  ASSERT_TRUE(write_results(results(2.0, 0.5)));
  auto r = read_results(bundle_.dir / "results.json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->measurements.size(), 2u);
  EXPECT_EQ(fastest(*r, *b)->id, "d0@caching");
}

TEST_F(BundleTest, BadBundlesAreClearErrors) {
  auto none = read_bundle(dir_->path());
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Code::kNotFound);
  EXPECT_NE(none.error().message.find("kiln tune prepare"), std::string::npos);
  auto j = to_json(bundle_);
  j["format_version"] = 99;
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", j.dump()));
  EXPECT_NE(read_bundle(bundle_.dir).error().message.find("version 99"), std::string::npos);
  j = to_json(bundle_);
  j["candidates"][1]["module"] = "../../etc/passwd";
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", j.dump()));
  EXPECT_NE(read_bundle(bundle_.dir).error().message.find("leaves the bundle"), std::string::npos);
  j = to_json(bundle_);
  j["candidates"][1]["configs"] = {{"../../escape", "configs/d0/x.mlir"}};
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", j.dump()));
  EXPECT_NE(read_bundle(bundle_.dir).error().message.find("leaves the bundle"), std::string::npos);
  j = to_json(bundle_);
  j["candidates"][1]["id"] = "../x";
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", j.dump()));
  EXPECT_NE(read_bundle(bundle_.dir).error().message.find("not a plain name"), std::string::npos);
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", R"({"format": 7, "format_version": "x", "n": 1e400})"));
  EXPECT_FALSE(read_bundle(bundle_.dir));
  ASSERT_TRUE(util::write_file_atomic(bundle_.dir / "bundle.json", R"({"format": 7, "format_version": "x"})"));
  EXPECT_NE(read_bundle(bundle_.dir).error().message.find("not a kiln tuning bundle"), std::string::npos);
}

TEST_F(BundleTest, ApplyRecordsTheFastestCorrectCandidate) {
  ASSERT_TRUE(write_results(results(2.0, 0.5)));
  tuning::Database db(dir_->path() / "db");
  auto record = apply(bundle_.dir / "results.json", {}, db);
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_EQ(record->candidate, "d0@caching");
  EXPECT_EQ(record->latency_ms, 0.5);
  EXPECT_EQ(record->baseline_ms, 2.0);
  EXPECT_EQ(record->device, "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(record->compile_flags, std::vector<std::string>{"--iree-opt-level=O3"});
  auto found = db.find({bundle_.program_sha256, "cuda-sm_90", "3.13.0", "highest"});
  ASSERT_TRUE(found && *found);
  EXPECT_EQ(*util::read_file((*found)->configs_dir / "main_dispatch_0.mlir"), "hal.executable @main_dispatch_0");
}

TEST_F(BundleTest, ApplyNeverPicksAWrongCandidate) {
  ASSERT_TRUE(write_results(results(2.0, 0.1, "mismatch")));
  tuning::Database db(dir_->path() / "db");
  auto record = apply(bundle_.dir / "results.json", {}, db);
  ASSERT_TRUE(record);
  EXPECT_EQ(record->candidate, "reference");
  EXPECT_TRUE(record->runtime_flags.empty());
}

TEST_F(BundleTest, ApplyRefusesResultsOfAnotherBundle) {
  Results r = results(2.0, 0.5);
  r.bundle_digest = std::string(64, '0');
  ASSERT_TRUE(write_results(r));
  tuning::Database db(dir_->path() / "db");
  auto record = apply(bundle_.dir / "results.json", {}, db);
  ASSERT_FALSE(record);
  EXPECT_NE(record.error().message.find("does not match"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir_->path() / "db"));  // nothing written
  r = results(2.0, 0.5);
  r.measurements.push_back({"unknown", "ok", 0.01, 0, 0, ""});
  ASSERT_TRUE(write_results(r));
  record = apply(bundle_.dir / "results.json", {}, db);
  ASSERT_FALSE(record);
  EXPECT_NE(record.error().message.find("'unknown'"), std::string::npos);
}

TEST(TuneDeployment, SaysHowToSetTheRuntimeOptions) {
  auto none = deployment_lines("cuda", {});
  EXPECT_NE(none[0].find("default"), std::string::npos);
  auto lines = deployment_lines("cuda", {"--device_allocator=caching", "--cuda_async_allocations=false"});
  EXPECT_EQ(lines[0], "deploy with: iree-run-module --device=cuda --device_allocator=caching --cuda_async_allocations=false");
  EXPECT_NE(lines[1].find("rt.flags.parse_flags(\"--cuda_async_allocations=false\")"), std::string::npos);
  EXPECT_NE(lines[1].find("allocators=[\"caching\"]"), std::string::npos);
}

TEST(PrecisionPolicy, FlagsAndValidation) {
  compile::Options o;
  EXPECT_TRUE(compile::validate(o));
  o.precision = "f16-inputs";
  EXPECT_TRUE(compile::validate(o));
  EXPECT_EQ(compile::option_flags(o), (std::vector<std::string>{"--iree-global-opt-demote-contraction-inputs-type=f16",
                                                                 "--iree-global-opt-demote-contraction-inputs-operations=all"}));
  o.precision = "bf16-inputs";
  EXPECT_EQ(compile::option_flags(o)[0], "--iree-global-opt-demote-contraction-inputs-type=bf16");
  o.precision = "highest";
  EXPECT_TRUE(compile::option_flags(o).empty());
  o.precision = "tf32";
  auto bad = compile::validate(o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("highest, f16-inputs, bf16-inputs"), std::string::npos);
  EXPECT_EQ(compile::precision_name(""), "highest");
}

}  // namespace kiln::tune
