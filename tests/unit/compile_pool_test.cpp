#include "kiln/compile/pool.h"

#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>
#include <thread>

#include <gtest/gtest.h>

namespace kiln::compile {

TEST(Pool, RunsEveryUnitWithAtMostJobsAtOnce) {
  std::atomic<int> running{0}, peak{0}, done{0};
  std::vector<int> started(10, 0);
  run_pool(10, {3, 0}, [] { return uint64_t{1}; },
           [&](size_t i) {
             int now = ++running;
             int seen = peak.load();
             while (now > seen && !peak.compare_exchange_weak(seen, now)) {
             }
             std::this_thread::sleep_for(std::chrono::milliseconds(20));
             started[i] = 1;
             --running;
             ++done;
           },
           {});
  EXPECT_EQ(done.load(), 10);
  EXPECT_LE(peak.load(), 3);
  EXPECT_GE(peak.load(), 2);
  for (int s : started) EXPECT_EQ(s, 1);
}

TEST(Pool, MemoryBudgetSerializesLargeUnits) {
  std::atomic<int> running{0}, peak{0};
  run_pool(4, {4, 1000}, [] { return uint64_t{600}; },
           [&](size_t) {
             int now = ++running;
             peak = std::max(peak.load(), now);
             std::this_thread::sleep_for(std::chrono::milliseconds(20));
             --running;
           },
           {});
  EXPECT_EQ(peak.load(), 1) << "two units of 600 do not fit a budget of 1000";
}

TEST(Pool, EventsFireForEveryUnit) {
  std::atomic<int> started{0}, finished{0};
  PoolEvents events;
  events.started = [&](size_t) { ++started; };
  events.finished = [&](size_t) { ++finished; };
  run_pool(5, {2, 0}, [] { return uint64_t{1}; }, [](size_t) {}, events);
  EXPECT_EQ(started.load(), 5);
  EXPECT_EQ(finished.load(), 5);
}

TEST(Pool, AnExceptionInAUnitFailsThatUnitOnly) {
  // Before the catch at the thread's entry this ended the process in
  // std::terminate.
  std::atomic<int> done{0}, finished{0};
  std::vector<std::string> crashes(4);
  PoolEvents events;
  events.finished = [&](size_t) { ++finished; };
  events.crashed = [&](size_t i, const std::string& what) { crashes[i] = what; };
  run_pool(4, {2, 0}, [] { return uint64_t{1}; },
           [&](size_t i) {
             if (i == 1) throw std::runtime_error("type must be number, but is null");
             ++done;
           },
           events);
  EXPECT_EQ(done.load(), 3);
  EXPECT_EQ(finished.load(), 4);
  EXPECT_EQ(crashes[1], "type must be number, but is null");
  EXPECT_TRUE(crashes[0].empty());
}

TEST(Pool, MachineFacts) {
  EXPECT_GE(available_cpus(), 1);
  EXPECT_GT(available_memory(), 0u);
}

}  // namespace kiln::compile
