// The folder implementation of the object store and the shared cache over it.
// The S3 implementation runs against a real SeaweedFS in tests/fleet.
#include "kiln/blob/bucket.h"

#include <gtest/gtest.h>

#include "kiln/cache/shared.h"
#include "kiln/util/file.h"

namespace kiln::blob {

class FolderBucketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-bucket-test-"));
    auto b = open((dir_->path() / "store").string());
    ASSERT_TRUE(b) << b.error().message;
    bucket_ = std::move(*b);
    ASSERT_TRUE(bucket_->check());
  }
  std::unique_ptr<util::TempDir> dir_;
  std::unique_ptr<Bucket> bucket_;
};

TEST_F(FolderBucketTest, ObjectsComeBackAsWritten) {
  ASSERT_TRUE(bucket_->put("jobs/a/model.vmfb", std::string("bytes\0with nul", 14)));
  auto got = bucket_->get("jobs/a/model.vmfb");
  ASSERT_TRUE(got && *got);
  EXPECT_EQ(**got, std::string("bytes\0with nul", 14));
  auto missing = bucket_->get("jobs/a/none");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  ASSERT_TRUE(bucket_->remove("jobs/a/model.vmfb"));
  EXPECT_FALSE(*bucket_->get("jobs/a/model.vmfb"));
}

TEST_F(FolderBucketTest, ADamagedObjectIsAnErrorNotData) {
  ASSERT_TRUE(bucket_->put("k", "the module"));
  auto file = dir_->path() / "store" / "k";
  auto text = *util::read_file(file);
  text.back() = 'X';
  ASSERT_TRUE(util::write_file_atomic(file, text));
  auto got = bucket_->get("k");
  ASSERT_FALSE(got);
  EXPECT_NE(got.error().message.find("damaged"), std::string::npos) << got.error().message;
}

TEST_F(FolderBucketTest, KeysThatLeaveTheStoreAreRefused) {
  EXPECT_FALSE(valid_key("../etc/passwd"));
  EXPECT_FALSE(valid_key("/abs"));
  EXPECT_FALSE(valid_key("a b"));
  EXPECT_TRUE(valid_key("cache/v1/ab12/module.vmfb"));
  EXPECT_FALSE(bucket_->put("../x", "y"));
}

TEST(BucketOpen, AddressesAreCheckedWithTheirFix) {
  auto bad = open("s3://Bad_Bucket/p");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("s3://BUCKET/PREFIX"), std::string::npos);
  EXPECT_FALSE(open("relative/folder"));
  auto s3 = open("s3://kiln-artifacts/prod", S3Settings{"http://127.0.0.1:9", "eu-west-1", "", "", ""});
  ASSERT_TRUE(s3);
  EXPECT_EQ((*s3)->describe(), "s3://kiln-artifacts/prod/ at http://127.0.0.1:9");
  auto no_credentials = (*s3)->check();
  ASSERT_FALSE(no_credentials);
  EXPECT_NE(no_credentials.error().message.find("AWS_ACCESS_KEY_ID"), std::string::npos);
}

TEST_F(FolderBucketTest, TheSharedCacheKeepsModuleAndMetadataTogether) {
  cache::Shared shared(*bucket_);
  std::string key(64, 'a');
  auto module = dir_->path() / "m.vmfb";
  ASSERT_TRUE(util::write_file_atomic(module, "module bytes"));
  auto none = shared.fetch(key, dir_->path() / "out.vmfb");
  ASSERT_TRUE(none);
  EXPECT_FALSE(*none);
  ASSERT_TRUE(shared.publish(key, cache::KeyParts{"in", {"--f"}, "cpu-host", "3.13.0", "", "", ""}, module,
                             {{"format", "kiln-module-metadata"}}));
  auto hit = shared.fetch(key, dir_->path() / "out.vmfb");
  ASSERT_TRUE(hit && *hit) << (hit ? "" : hit.error().message);
  EXPECT_EQ((*hit)->metadata["format"], "kiln-module-metadata");
  EXPECT_EQ(*util::read_file(dir_->path() / "out.vmfb"), "module bytes");
  // A module object replaced behind the entry's back is not served.
  ASSERT_TRUE(bucket_->put("cache/v1/" + key + "/module.vmfb", "other bytes"));
  EXPECT_FALSE(shared.fetch(key, dir_->path() / "again.vmfb"));
}

}  // namespace kiln::blob
