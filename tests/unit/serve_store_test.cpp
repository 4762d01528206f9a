#include "kiln/serve/store.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/util/file.h"

namespace kiln::serve {

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-store-test-"));
  }
  std::unique_ptr<Store> open() {
    auto s = Store::open(dir_->path() / "kiln.db");
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  JobRecord job(const std::string& id, double created) {
    return {id, "queued", created, 0, 0, {{"targets", {"cpu"}}}, "/in/" + id, nullptr, "", "", 0};
  }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_F(JobStoreTest, QueueIsFirstInFirstOut) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("b", 2)));
  ASSERT_TRUE(s->insert(job("a", 1)));
  auto first = s->claim_next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, "a");
  EXPECT_EQ(first->state, "running");
  EXPECT_EQ(first->attempts, 1);
  EXPECT_EQ(s->claim_next()->id, "b");
  EXPECT_FALSE(s->claim_next());
  ASSERT_TRUE(s->finish("a", "succeeded", nlohmann::json::array({{{"target", "cpu"}}}), "", ""));
  auto done = s->get("a");
  EXPECT_EQ(done->state, "succeeded");
  EXPECT_EQ(done->result[0]["target"], "cpu");
  EXPECT_GT(done->finished_at, 0);
  EXPECT_EQ(s->counts()["running"], 1);
}

TEST_F(JobStoreTest, TheQueueLimitIsExactAtInsert) {
  // Counted and stored in one step: concurrent submissions cannot pass a
  // check that each made before the others stored their job.
  auto s = open();
  std::vector<std::thread> threads;
  std::atomic<int> stored{0}, refused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto st = s->insert(job("j" + std::to_string(i), i), 3);
      if (st) ++stored;
      if (!st && st.error().code == Code::kResourceExhausted) ++refused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stored.load(), 3);
  EXPECT_EQ(refused.load(), 5);
  EXPECT_EQ(s->counts()["queued"], 3);
  ASSERT_TRUE(s->claim_next());
  EXPECT_TRUE(s->insert(job("later", 9), 3)) << "a running job does not count against the queue";
}

TEST_F(JobStoreTest, CancelTakesQueuedJobsAtOnceAndLeavesRunningOnes) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(s->insert(job("b", 2)));
  s->claim_next();
  EXPECT_EQ(*s->cancel("b"), "cancelled");
  EXPECT_EQ(*s->cancel("a"), "running") << "the worker stops it";
  EXPECT_FALSE(s->cancel("nope"));
}

TEST_F(JobStoreTest, RecoveryAfterACrash) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert(job("a", 1)));
    ASSERT_TRUE(s->insert(job("b", 2)));
    s->claim_next();  // a runs when the process "dies"
  }
  auto s = open();
  EXPECT_EQ(*s->recover(3), 1);
  EXPECT_EQ(s->get("a")->state, "queued");
  EXPECT_EQ(s->get("b")->state, "queued");
  // A job that keeps taking the service down is failed after 3 starts.
  for (int start = 2; start <= 3; ++start) {
    auto claimed = s->claim_next();
    ASSERT_TRUE(claimed);
    EXPECT_EQ(claimed->id, "a");
    EXPECT_EQ(claimed->attempts, start);
    ASSERT_TRUE(s->recover(3));
  }
  auto a = s->get("a");
  EXPECT_EQ(a->state, "failed");
  EXPECT_NE(a->error_message.find("3 times"), std::string::npos) << a->error_message;
}

TEST_F(JobStoreTest, UnknownSchemaVersionIsRefused) {
  { open(); }
  // Another kiln's newer database.
  std::string db = (dir_->path() / "kiln.db").string();
  ASSERT_EQ(std::system(("python3 -c \"import sqlite3; c=sqlite3.connect('" + db +
                         "'); c.execute('PRAGMA user_version = 7'); c.commit()\"").c_str()),
            0);
  auto s = Store::open(db);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("schema version 7"), std::string::npos) << s.error().message;
}

}  // namespace kiln::serve
