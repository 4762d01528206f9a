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
    auto s = Store::open((dir_->path() / "kiln.db").string());
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  JobRecord job(const std::string& id, double created) {
    return {id, JobState::kQueued, created, 0, 0, {{"targets", {"cpu"}}}, "/in/" + id, nullptr, "", "", 0};
  }
  // The job a claim took (a worker "w" with a lease of a minute).
  static std::optional<JobRecord> claim(Store& s, const std::string& worker = "w", double lease = 60) {
    auto c = s.claim_next(worker, lease);
    EXPECT_TRUE(c) << c.error().message;
    return c ? *c : std::nullopt;
  }
  static JobRecord get(Store& s, const std::string& id) {
    auto j = s.get(id);
    EXPECT_TRUE(j && *j) << id;
    return j && *j ? **j : JobRecord{};
  }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_F(JobStoreTest, QueueIsFirstInFirstOut) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("b", 2)));
  ASSERT_TRUE(s->insert(job("a", 1)));
  auto first = claim(*s);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->id, "a");
  EXPECT_EQ(first->state, JobState::kRunning);
  EXPECT_EQ(first->attempts, 1);
  EXPECT_EQ(first->worker, "w");
  EXPECT_EQ(claim(*s)->id, "b");
  EXPECT_FALSE(claim(*s));
  EXPECT_FALSE(*s->finish("a", "other worker", JobState::kSucceeded, nlohmann::json::array(), "", ""))
      << "only the holder records the end";
  ASSERT_TRUE(*s->finish("a", "w", JobState::kSucceeded, nlohmann::json::array({{{"target", "cpu"}}}), "", ""));
  auto done = get(*s, "a");
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result[0]["target"], "cpu");
  EXPECT_GT(done.finished_at, 0);
  EXPECT_EQ((*s->counts())["running"], 1);
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
  EXPECT_EQ((*s->counts())["queued"], 3);
  ASSERT_TRUE(claim(*s));
  EXPECT_TRUE(s->insert(job("later", 9), 3)) << "a running job does not count against the queue";
}

TEST_F(JobStoreTest, CancelTakesQueuedJobsAtOnceAndLeavesRunningOnes) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(s->insert(job("b", 2)));
  claim(*s);
  EXPECT_FALSE(s->renew("a", "w", 60)->cancel_requested);
  EXPECT_EQ(**s->cancel("b"), JobState::kCancelled);
  EXPECT_EQ(**s->cancel("a"), JobState::kRunning) << "the worker stops it";
  EXPECT_TRUE(s->renew("a", "w", 60)->cancel_requested) << "the worker learns of it when it renews its lease";
  EXPECT_FALSE(*s->cancel("nope"));
}

TEST_F(JobStoreTest, AnExpiredLeaseQueuesTheJobAgainForAnotherWorker) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s, "w1", 0.05));
  EXPECT_EQ(*s->expire(3), 0) << "the lease still runs";
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(*s->expire(3), 1);
  EXPECT_FALSE(s->renew("a", "w1", 60)->held) << "the first worker lost it";
  auto again = claim(*s, "w2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
  EXPECT_FALSE(*s->finish("a", "w1", JobState::kSucceeded, nlohmann::json::array(), "", "")) << "the late first worker";
  EXPECT_TRUE(*s->finish("a", "w2", JobState::kSucceeded, nlohmann::json::array(), "", ""));
}

TEST_F(JobStoreTest, AReleasedJobIsQueuedAgainWithoutCountingTheStart) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s));
  ASSERT_TRUE(s->release("a", "w"));
  auto a = get(*s, "a");
  EXPECT_EQ(a.state, JobState::kQueued);
  EXPECT_EQ(a.attempts, 0);
}

TEST_F(JobStoreTest, OneHolderOfAKeyAtATime) {
  auto s = open();
  auto first = s->hold("k", nullptr);
  ASSERT_TRUE(first);
  std::atomic<bool> cancel{false};
  std::atomic<bool> second_held{false};
  std::thread waiter([&] {
    auto second = s->hold("k", &cancel);
    second_held = static_cast<bool>(second);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(second_held.load()) << "the second waits while the first holds the key";
  first->reset();
  waiter.join();
  EXPECT_TRUE(second_held.load());
  auto third = s->hold("k", nullptr);
  ASSERT_TRUE(third);
  cancel = true;
  auto cancelled = s->hold("k", &cancel);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().code, Code::kCancelled);
}

TEST_F(JobStoreTest, RecoveryAfterACrash) {
  {
    auto s = open();
    ASSERT_TRUE(s->insert(job("a", 1)));
    ASSERT_TRUE(s->insert(job("b", 2)));
    claim(*s);  // a runs when the process "dies"
  }
  auto s = open();
  EXPECT_EQ(*s->recover(3), 1);
  EXPECT_EQ(get(*s, "a").state, JobState::kQueued);
  EXPECT_EQ(get(*s, "b").state, JobState::kQueued);
  // A job that keeps taking the service down is failed after 3 starts.
  for (int start = 2; start <= 3; ++start) {
    auto claimed = claim(*s);
    ASSERT_TRUE(claimed);
    EXPECT_EQ(claimed->id, "a");
    EXPECT_EQ(claimed->attempts, start);
    ASSERT_TRUE(s->recover(3));
  }
  auto a = get(*s, "a");
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_NE(a.error_message.find("3 times"), std::string::npos) << a.error_message;
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
