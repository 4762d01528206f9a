// The job store's contract, run against every backend: SQLite (one host) and
// a real PostgreSQL server started with scripts/fleet-env.sh for this run.
// Every state change is covered, and the invariant that a job is succeeded
// only with a finished unit for every unit its request plans.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kiln/serve/store.h"
#include "kiln/util/file.h"
#include "kiln/util/strings.h"

namespace kiln::serve {
namespace {

namespace fs = std::filesystem;

// The PostgreSQL server of this run: started once by main(), stopped at exit.
struct Postgres {
  std::string url;     // empty when it could not be started
  std::string reason;  // why not
  fs::path env_dir;
};
Postgres& postgres() {
  static Postgres pg;
  return pg;
}

class FleetEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    auto& pg = postgres();
    auto dir = util::TempDir::create("/tmp", "kiln-store-pg-");
    if (!dir) {
      pg.reason = dir.error().message;
      return;
    }
    dir_ = std::make_unique<util::TempDir>(std::move(*dir));
    // The server may run as another user (fleet-env.sh does as root): it
    // must be able to pass through this folder.
    std::error_code ec;
    fs::permissions(dir_->path(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec, ec);
    pg.env_dir = dir_->path() / "env";
    std::string script = std::string(KILN_SOURCE_DIR) + "/scripts/fleet-env.sh";
    std::string log = (dir_->path() / "fleet-env.log").string();
    if (std::system(("bash " + script + " start " + pg.env_dir.string() + " >" + log + " 2>&1").c_str()) != 0) {
      pg.reason = "scripts/fleet-env.sh could not start PostgreSQL: " + util::read_file(log).value_or("(no log)");
      return;
    }
    started_ = true;
    for (const auto& line : util::split(util::read_file(pg.env_dir / "env").value_or(""), '\n')) {
      if (line.rfind("KILN_QUEUE=", 0) == 0) pg.url = line.substr(11);
    }
    if (pg.url.empty()) pg.reason = "scripts/fleet-env.sh wrote no KILN_QUEUE";
  }
  void TearDown() override {
    if (started_) {
      std::string script = std::string(KILN_SOURCE_DIR) + "/scripts/fleet-env.sh";
      (void)std::system(("bash " + script + " stop " + postgres().env_dir.string() + " >/dev/null 2>&1").c_str());
    }
    dir_.reset();
  }

 private:
  std::unique_ptr<util::TempDir> dir_;
  bool started_ = false;
};

class StoreContract : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<util::TempDir>(*util::TempDir::create(util::temp_root(), "kiln-store-contract-"));
    if (GetParam() == "postgres") {
      if (postgres().url.empty()) GTEST_SKIP() << "PostgreSQL is not available: " << postgres().reason;
      // Each test starts from an empty queue (kiln's role owns its tables).
      std::string drop = "psql -q -X '" + postgres().url + "' -c 'DROP TABLE IF EXISTS jobs, kiln_schema' >/dev/null";
      ASSERT_EQ(std::system(drop.c_str()), 0) << "cannot empty the PostgreSQL queue";
    }
  }
  std::string where() const {
    return GetParam() == "postgres" ? postgres().url : (dir_->path() / "kiln.db").string();
  }
  std::unique_ptr<Store> open() {
    auto s = Store::open(where());
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(*s) : nullptr;
  }
  static JobRecord job(const std::string& id, double created, nlohmann::json request = {{"targets", {"cpu"}}}) {
    return {id, JobState::kQueued, created, 0, 0, std::move(request), "/in/" + id, nullptr, "", "", 0};
  }
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
  // A finished unit as a worker records it.
  static nlohmann::json ok(const std::string& target) {
    return {{"target", target}, {"ok", true}, {"module", "m.vmfb"}, {"metadata", "m.json"}, {"sha256", "00"}};
  }
  std::unique_ptr<util::TempDir> dir_;
};

TEST_P(StoreContract, QueueIsFirstInFirstOut) {
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
  auto units = nlohmann::json::array({ok("cpu")});
  EXPECT_FALSE(*s->finish("a", "other worker", JobState::kSucceeded, units, "", "")) << "only the holder records the end";
  ASSERT_TRUE(*s->finish("a", "w", JobState::kSucceeded, units, "", ""));
  auto done = get(*s, "a");
  EXPECT_EQ(done.state, JobState::kSucceeded);
  EXPECT_EQ(done.result[0]["target"], "cpu");
  EXPECT_GT(done.finished_at, 0);
  EXPECT_EQ((*s->counts())["running"], 1);
  EXPECT_EQ((*s->counts())["succeeded"], 1);
}

TEST_P(StoreContract, TheQueueLimitIsExactAtInsert) {
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

TEST_P(StoreContract, CancelTakesQueuedJobsAtOnceAndLeavesRunningOnes) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(s->insert(job("b", 2)));
  claim(*s);
  EXPECT_FALSE(s->renew("a", "w", 60)->cancel_requested);
  EXPECT_EQ(**s->cancel("b"), JobState::kCancelled);
  EXPECT_EQ(**s->cancel("a"), JobState::kRunning) << "the worker stops it";
  EXPECT_TRUE(s->renew("a", "w", 60)->cancel_requested) << "the worker learns of it when it renews its lease";
  EXPECT_FALSE(*s->cancel("nope"));
  ASSERT_TRUE(*s->finish("a", "w", JobState::kCancelled, nlohmann::json::array(), "", ""));
  EXPECT_EQ(get(*s, "a").state, JobState::kCancelled);
}

TEST_P(StoreContract, AnExpiredLeaseQueuesTheJobAgainForAnotherWorker) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s, "w1", 0.05));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  EXPECT_EQ(*s->expire(3), 1);
  EXPECT_FALSE(s->renew("a", "w1", 60)->held) << "the first worker lost it";
  auto again = claim(*s, "w2");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->attempts, 2);
  auto units = nlohmann::json::array({ok("cpu")});
  EXPECT_FALSE(*s->finish("a", "w1", JobState::kSucceeded, units, "", "")) << "the late first worker";
  EXPECT_TRUE(*s->finish("a", "w2", JobState::kSucceeded, units, "", ""));
}

TEST_P(StoreContract, ALiveLeaseIsNotExpired) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s, "w1", 60));
  EXPECT_EQ(*s->expire(3), 0);
  EXPECT_TRUE(s->renew("a", "w1", 60)->held);
}

TEST_P(StoreContract, AJobWhoseWorkersKeepDyingFailsAfterMaxAttempts) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  for (int start = 1; start <= 2; ++start) {
    ASSERT_TRUE(claim(*s, "w" + std::to_string(start), 0.05));
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ASSERT_TRUE(s->expire(2));
  }
  auto a = get(*s, "a");
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_NE(a.error_message.find("2 times"), std::string::npos) << a.error_message;
}

TEST_P(StoreContract, AReleasedJobIsQueuedAgainWithoutCountingTheStart) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s));
  ASSERT_TRUE(s->release("a", "w"));
  auto a = get(*s, "a");
  EXPECT_EQ(a.state, JobState::kQueued);
  EXPECT_EQ(a.attempts, 0);
  EXPECT_EQ(a.worker, "");
  ASSERT_TRUE(s->release("a", "w")) << "releasing a job no longer held changes nothing";
  EXPECT_EQ(get(*s, "a").state, JobState::kQueued);
}

TEST_P(StoreContract, AReleasedJobWithACancelRequestEndsCancelled) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1)));
  ASSERT_TRUE(claim(*s));
  ASSERT_TRUE(s->cancel("a"));
  ASSERT_TRUE(s->release("a", "w"));
  EXPECT_EQ(get(*s, "a").state, JobState::kCancelled) << "not run again after the client cancelled it";
}

TEST_P(StoreContract, SucceededNeedsAFinishedUnitForEveryTarget) {
  auto s = open();
  ASSERT_TRUE(s->insert(job("a", 1, {{"targets", {"cpu", "cuda:h100"}}})));
  ASSERT_TRUE(claim(*s));
  auto refused = [&](const nlohmann::json& units) {
    auto r = s->finish("a", "w", JobState::kSucceeded, units, "", "");
    EXPECT_FALSE(r) << units.dump();
    if (!r) {
      EXPECT_EQ(r.error().code, Code::kFailedPrecondition) << r.error().message;
    }
    EXPECT_EQ(get(*s, "a").state, JobState::kRunning) << "nothing written";
  };
  refused(nlohmann::json::array());
  refused(nlohmann::json::array({ok("cpu")}));
  refused(nlohmann::json::array({ok("cpu"), ok("cpu")}));
  refused(nlohmann::json::array({ok("cpu"), {{"target", "cuda:h100"}, {"ok", false}}}));
  refused(nlohmann::json::array({ok("cpu"), ok("cuda:h100"), ok("cpu")}));
  refused(nlohmann::json());
  // Failed (or cancelled) may hold any part of the units.
  ASSERT_TRUE(*s->finish("a", "w", JobState::kFailed, nlohmann::json::array({ok("cpu")}), "compile_failed", "x"));
  EXPECT_EQ(get(*s, "a").state, JobState::kFailed);
  ASSERT_TRUE(s->insert(job("b", 2, {{"targets", {"cpu", "cuda:h100"}}})));
  ASSERT_TRUE(claim(*s));
  ASSERT_TRUE(*s->finish("b", "w", JobState::kSucceeded, nlohmann::json::array({ok("cuda:h100"), ok("cpu")}), "", ""));
  EXPECT_EQ(get(*s, "b").state, JobState::kSucceeded);
}

TEST_P(StoreContract, SucceededNeedsAUnitForEveryTargetAndBinding) {
  auto s = open();
  nlohmann::json request = {{"targets", {"cpu"}}, {"options", {{"bind", {{{"b", 5}}, {{"b", 64}}}}}}};
  ASSERT_TRUE(s->insert(job("a", 1, request)));
  ASSERT_TRUE(claim(*s));
  EXPECT_FALSE(s->finish("a", "w", JobState::kSucceeded, nlohmann::json::array({ok("cpu")}), "", ""));
  ASSERT_TRUE(*s->finish("a", "w", JobState::kSucceeded, nlohmann::json::array({ok("cpu"), ok("cpu")}), "", ""));
}

TEST_P(StoreContract, OneHolderOfAKeyAtATime) {
  auto s = open();
  const std::string key = "0123456789abcdef0123";
  auto first = s->hold(key, nullptr);
  ASSERT_TRUE(first);
  std::atomic<bool> cancel{false};
  std::atomic<bool> second_held{false};
  std::thread waiter([&] {
    auto second = s->hold(key, &cancel);
    second_held = static_cast<bool>(second);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_FALSE(second_held.load()) << "the second waits while the first holds the key";
  first->reset();
  waiter.join();
  EXPECT_TRUE(second_held.load());
  auto third = s->hold(key, nullptr);
  ASSERT_TRUE(third);
  cancel = true;
  auto cancelled = s->hold(key, &cancel);
  ASSERT_FALSE(cancelled);
  EXPECT_EQ(cancelled.error().code, Code::kCancelled);
}

TEST_P(StoreContract, RecentListsNewestFirst) {
  auto s = open();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(s->insert(job("j" + std::to_string(i), i + 1)));
  auto recent = s->recent(2);
  ASSERT_TRUE(recent);
  ASSERT_EQ(recent->size(), 2u);
  EXPECT_EQ((*recent)[0].id, "j2");
  EXPECT_EQ((*recent)[1].id, "j1");
  EXPECT_FALSE(*s->get("missing"));
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace kiln::serve

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new kiln::serve::FleetEnvironment);
  return RUN_ALL_TESTS();
}
