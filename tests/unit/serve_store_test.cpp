// The SQLite job store's own behaviour (one host). What every backend
// promises is tests/store/store_contract_test.cpp, run on SQLite and PostgreSQL.
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
