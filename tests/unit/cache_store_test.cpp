#include "kiln/cache/store.h"

#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::cache {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-cache-test-"));
  }
  fs::path module(const std::string& name, size_t bytes) {
    fs::path p = dir_->path() / name;
    EXPECT_TRUE(util::write_file_atomic(p, std::string(bytes, name[0])));
    return p;
  }
  KeyParts parts(const std::string& input) { return {input, {"--f"}, "cpu-host", "3.13.0", "b", "r"}; }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_F(StoreTest, MissThenHitAndCounters) {
  auto store = Store::open(dir_->path() / "cache", 0);
  ASSERT_TRUE(store);
  std::string key = key_of(parts("x"));
  auto miss = store->lookup(key);
  ASSERT_TRUE(miss);
  EXPECT_FALSE(*miss);
  ASSERT_TRUE(store->insert(key, parts("x"), module("m", 100), {{"format", "kiln-module-metadata"}}));
  auto hit = store->lookup(key);
  ASSERT_TRUE(hit && *hit);
  EXPECT_EQ(*util::read_file((*hit)->module), std::string(100, 'm'));
  EXPECT_EQ((*hit)->metadata["format"], "kiln-module-metadata");
  auto st = *store->stats();
  EXPECT_EQ(st.hits, 1u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.entries, 1u);
  EXPECT_GE(st.bytes, 100u);
}

TEST_F(StoreTest, CorruptEntryIsDroppedNotServed) {
  auto store = *Store::open(dir_->path() / "cache", 0);
  std::string key = key_of(parts("x"));
  ASSERT_TRUE(store.insert(key, parts("x"), module("m", 64), {}));
  fs::path cached = store.root() / "entries" / key.substr(0, 2) / key / "module.vmfb";
  ASSERT_TRUE(fs::exists(cached));
  {
    std::ofstream f(cached, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(10);
    f.put('X');
  }
  auto r = store.lookup(key);
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  EXPECT_FALSE(fs::exists(cached.parent_path()));
  EXPECT_EQ(store.stats()->corrupt, 1u);
  // It can be rebuilt.
  ASSERT_TRUE(store.insert(key, parts("x"), module("m", 64), {}));
  EXPECT_TRUE(*store.lookup(key));
}

TEST_F(StoreTest, EvictsLeastRecentlyUsedFirst) {
  // Each entry holds a 4000-byte module plus small JSON files.
  auto store = *Store::open(dir_->path() / "cache", 15000);
  auto insert = [&](const std::string& name) {
    ASSERT_TRUE(store.insert(key_of(parts(name)), parts(name), module(name, 4000), {}));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // distinct LRU clocks
  };
  insert("a");
  insert("b");
  insert("c");
  ASSERT_TRUE(*store.lookup(key_of(parts("a"))));  // a is now the most recent
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  insert("d");
  EXPECT_TRUE(*store.lookup(key_of(parts("a"))));
  EXPECT_FALSE(*store.lookup(key_of(parts("b")))) << "b was the least recently used";
  EXPECT_TRUE(*store.lookup(key_of(parts("d"))));
  EXPECT_GE(store.stats()->evictions, 1u);
  EXPECT_LE(store.stats()->bytes, 15000u);
}

TEST_F(StoreTest, ExplainNamesTheDifferingPart) {
  auto store = *Store::open(dir_->path() / "cache", 0);
  ASSERT_TRUE(store.insert(key_of(parts("x")), parts("x"), module("m", 10), {}));
  KeyParts other = parts("x");
  other.target = "cuda-sm_80";
  auto e = store.explain(other);
  ASSERT_TRUE(e.found_nearest);
  EXPECT_EQ(e.differing, (std::vector<std::string>{"target"}));
  EXPECT_FALSE(Store::open(dir_->path() / "empty", 0)->explain(other).found_nearest);
}

TEST_F(StoreTest, ClearRemovesEntries) {
  auto store = *Store::open(dir_->path() / "cache", 0);
  ASSERT_TRUE(store.insert(key_of(parts("x")), parts("x"), module("m", 10), {}));
  ASSERT_TRUE(store.clear());
  EXPECT_EQ(store.stats()->entries, 0u);
}

TEST(CacheSize, Parse) {
  EXPECT_EQ(*parse_size("5G"), 5ull << 30);
  EXPECT_EQ(*parse_size("500M"), 500ull << 20);
  EXPECT_EQ(*parse_size("1024"), 1024u);
  EXPECT_FALSE(parse_size("lots"));
}

}  // namespace kiln::cache
