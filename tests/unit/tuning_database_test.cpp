#include "kiln/tuning/database.h"

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::tuning {

class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-tuning-test-")); }
  Record record(const std::string& program, const std::string& precision = "highest") {
    Record r;
    r.id = {std::string(64, program[0]), "cuda-sm_90", "3.13.0", precision};
    r.program_name = program;
    r.target_spec = "cuda:h100";
    r.device = "NVIDIA H100 80GB HBM3";
    r.candidate = "combined@caching";
    r.summary = "main_dispatch_0: workgroup=[64,64,1]";
    r.compile_flags = {"--iree-opt-level=O3"};
    r.runtime_flags = {"--device_allocator=caching"};
    r.dispatches = {{"main_dispatch_0", "workgroup=[64,64,1]"}};
    r.latency_ms = 0.5;
    r.baseline_ms = 2.0;
    r.measured_at = "2026-11-25T00:00:00Z";
    return r;
  }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_F(DatabaseTest, KeysSeparateEveryPartOfTheIdentity) {
  Identity a{"p", "cuda-sm_90", "3.13.0", "highest"};
  std::string k = key_of(a);
  EXPECT_EQ(k.size(), 64u);
  for (auto change : {&Identity::program_sha256, &Identity::target_slug, &Identity::iree_release, &Identity::precision}) {
    Identity b = a;
    b.*change += "x";
    EXPECT_NE(key_of(b), k);
  }
  Identity async = a;
  async.invocation = "async";
  EXPECT_NE(key_of(async), k) << "a record tuned for queued calls is not the synchronous one";
  // Parts cannot run together.
  EXPECT_NE(key_of({"ab", "c", "3", "h"}), key_of({"a", "bc", "3", "h"}));
}

TEST_F(DatabaseTest, CompilerOptionsArePartOfTheIdentity) {
  Identity plain{"p", "cuda-sm_90", "3.13.0", "highest"};
  Identity o3 = plain;
  o3.options = {"--iree-opt-level=O3"};
  Identity o3_tiling = o3;
  o3_tiling.options.push_back("--iree-opt-data-tiling=false");
  EXPECT_NE(key_of(o3), key_of(plain)) << "a record tuned with flags applies only to compiles with them";
  EXPECT_NE(key_of(o3_tiling), key_of(o3));
  Identity joined = plain;
  joined.options = {"--iree-opt-level=O3--iree-opt-data-tiling=false"};
  EXPECT_NE(key_of(joined), key_of(o3_tiling)) << "flags cannot run together";

  Database db(dir_->path());
  auto r = record("mlp");
  Identity untuned_flags = r.id;
  r.id.options = o3.options;
  ASSERT_TRUE(db.put(r, {}));
  auto found = db.find(r.id);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->id.options, o3.options);
  auto other = db.find(untuned_flags);
  ASSERT_TRUE(other);
  EXPECT_FALSE(*other) << "a compile without the flags finds no record";
}

TEST_F(DatabaseTest, PutFindReplaceListForget) {
  Database db(dir_->path());
  Identity id = record("mlp").id;
  auto none = db.find(id);
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);

  auto stored = db.put(record("mlp"), {{"main_dispatch_0", "hal.executable @main_dispatch_0 {}"}});
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored->key, key_of(id));
  auto found = db.find(id);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->runtime_flags, std::vector<std::string>{"--device_allocator=caching"});
  EXPECT_EQ((*found)->compile_flags, std::vector<std::string>{"--iree-opt-level=O3"});
  ASSERT_FALSE((*found)->configs_dir.empty());
  EXPECT_EQ(*util::read_file((*found)->configs_dir / "main_dispatch_0.mlir"), "hal.executable @main_dispatch_0 {}");
  std::string digest = (*found)->module_digest;

  // Replacing changes the module digest when the configurations change.
  auto replaced = db.put(record("mlp"), {{"main_dispatch_0", "hal.executable @main_dispatch_0 { other }"}});
  ASSERT_TRUE(replaced);
  EXPECT_NE(replaced->module_digest, digest);
  ASSERT_TRUE(db.put(record("conv"), {}));
  ASSERT_TRUE(db.put(record("mlp", "f16-inputs"), {}));
  auto all = db.list();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].program_name, "conv");
  EXPECT_TRUE((*all)[0].configs_dir.empty());

  auto removed = db.forget("mlp");
  ASSERT_TRUE(removed);
  EXPECT_EQ(*removed, 2);
  auto left = db.list();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(*db.forget(left->front().key.substr(0, 8)), 1);
  EXPECT_EQ(*db.forget("nothing"), 0);
  EXPECT_FALSE(db.forget(""));
}

TEST_F(DatabaseTest, ADamagedRecordIsAClearError) {
  Database db(dir_->path());
  auto stored = db.put(record("mlp"), {});
  ASSERT_TRUE(stored);
  fs::path file = dir_->path() / "v1" / stored->key / "record.json";
  ASSERT_TRUE(util::write_file_atomic(file, "{}"));
  auto found = db.find(stored->id);
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().message.find("not a kiln tuning record"), std::string::npos);
  ASSERT_TRUE(util::write_file_atomic(file, R"({"format": "kiln-tuning-record", "format_version": 7})"));
  found = db.find(stored->id);
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().message.find("version 7"), std::string::npos);
  // A record moved under another key is refused, not misapplied.
  auto other = record("conv");
  auto j = to_json(*db.put(other, {}));
  ASSERT_TRUE(util::write_file_atomic(file, j.dump()));
  found = db.find(stored->id);
  ASSERT_FALSE(found);
  EXPECT_NE(found.error().message.find("does not match"), std::string::npos);
}

TEST_F(DatabaseTest, ConfigurationNamesCannotLeaveTheRecord) {
  Database db(dir_->path());
  EXPECT_FALSE(db.put(record("mlp"), {{"../escape", "x"}}));
  EXPECT_FALSE(db.put(record("mlp"), {{".hidden", "x"}}));
}

}  // namespace kiln::tuning
