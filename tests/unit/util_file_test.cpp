#include "kiln/util/file.h"
#include "kiln/util/hash.h"

#include <gtest/gtest.h>

namespace kiln::util {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = std::make_unique<TempDir>(*TempDir::create(temp_root(), "kiln-file-test-")); }
  fs::path dir() const { return dir_->path(); }
  std::unique_ptr<TempDir> dir_;
};

TEST_F(FileTest, AtomicWriteReplacesWholeFileAndLeavesNoTemporaries) {
  fs::path p = dir() / "a.json";
  ASSERT_TRUE(write_file_atomic(p, "first"));
  ASSERT_TRUE(write_file_atomic(p, "second, longer"));
  EXPECT_EQ(*read_file(p), "second, longer");
  size_t entries = std::distance(fs::directory_iterator(dir()), fs::directory_iterator());
  EXPECT_EQ(entries, 1u);
}

TEST_F(FileTest, AtomicWriteIntoMissingFolderFailsWithPath) {
  auto st = write_file_atomic(dir() / "missing" / "x", "data");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code, Code::kNotFound);
  EXPECT_NE(st.error().message.find("missing"), std::string::npos);
}

TEST_F(FileTest, ReadMissingFileIsNotFound) {
  auto r = read_file(dir() / "nope");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kNotFound);
}

TEST_F(FileTest, MappedEmptyFileIsEmpty) {
  ASSERT_TRUE(write_file_atomic(dir() / "empty", ""));
  auto m = MappedFile::open(dir() / "empty");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->bytes().empty());
}

TEST_F(FileTest, ReadingAFolderIsAnError) {
  auto r = read_file(dir());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Code::kInvalidArgument);
}

TEST_F(FileTest, TempDirRemovesItselfUnlessKept) {
  fs::path removed, kept;
  {
    auto t = TempDir::create(dir(), "x-");
    ASSERT_TRUE(t);
    removed = t->path();
    ASSERT_TRUE(write_file_atomic(removed / "f", "data"));
  }
  EXPECT_FALSE(fs::exists(removed));
  {
    auto t = TempDir::create(dir(), "y-");
    kept = t->path();
    t->keep();
  }
  EXPECT_TRUE(fs::exists(kept));
}

TEST_F(FileTest, PublishMovesFile) {
  ASSERT_TRUE(write_file_atomic(dir() / "staged", "module"));
  ASSERT_TRUE(publish_file(dir() / "staged", dir() / "final"));
  EXPECT_FALSE(fs::exists(dir() / "staged"));
  EXPECT_EQ(*read_file(dir() / "final"), "module");
}

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(FileTest, Sha256OfFileMatchesBytes) {
  std::string big(5 << 20, 'k');
  ASSERT_TRUE(write_file_atomic(dir() / "big", big));
  EXPECT_EQ(*sha256_file(dir() / "big"), sha256_hex(big));
}

}  // namespace kiln::util
