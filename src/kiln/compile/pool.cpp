#include "kiln/compile/pool.h"

#include <sched.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

namespace kiln::compile {

void run_pool(size_t count, const PoolOptions& options, const std::function<uint64_t()>& estimate,
              const std::function<void(size_t)>& work, const PoolEvents& events) {
  std::mutex mu;
  std::condition_variable done_cv;
  std::vector<size_t> finished_queue;
  size_t next = 0, running = 0, finished = 0;
  uint64_t reserved = 0;
  std::vector<std::thread> threads;
  std::vector<uint64_t> reservation(count, 0);

  auto can_start = [&] {
    if (next >= count || running >= static_cast<size_t>(std::max(1, options.jobs))) return false;
    if (running == 0 || options.memory_budget == 0) return true;
    return reserved + estimate() <= options.memory_budget;
  };

  std::unique_lock<std::mutex> lock(mu);
  while (finished < count) {
    while (can_start()) {
      size_t i = next++;
      reservation[i] = estimate();
      reserved += reservation[i];
      ++running;
      lock.unlock();
      if (events.started) events.started(i);
      threads.emplace_back([&, i] {
        std::string what;
        try {
          work(i);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
          what = "an exception of unknown type";
        }
        if (!what.empty()) {
          if (events.crashed) {
            events.crashed(i, what);
          } else {
            std::fprintf(stderr, "kiln: internal error in unit %zu: %s\n", i, what.c_str());
          }
        }
        std::lock_guard<std::mutex> guard(mu);
        finished_queue.push_back(i);
        done_cv.notify_all();
      });
      lock.lock();
    }
    done_cv.wait_for(lock, std::chrono::milliseconds(200), [&] { return !finished_queue.empty(); });
    auto done = std::move(finished_queue);
    finished_queue.clear();
    for (size_t i : done) {
      --running;
      ++finished;
      reserved -= reservation[i];
    }
    lock.unlock();
    for (size_t i : done) {
      if (events.finished) events.finished(i);
    }
    if (events.tick) events.tick();
    lock.lock();
  }
  lock.unlock();
  for (auto& t : threads) t.join();
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

uint64_t available_memory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t value;
  std::string unit;
  while (meminfo >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;
}

}  // namespace kiln::compile
