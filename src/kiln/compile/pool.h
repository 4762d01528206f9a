// Runs N independent units on a bounded worker pool: at most `jobs` at once,
// and no new unit while the units running are estimated to need more than
// the memory budget (one unit always runs, however large).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace kiln::compile {

struct PoolOptions {
  int jobs = 1;
  uint64_t memory_budget = 0;  // bytes; 0 = no limit
};

struct PoolEvents {
  std::function<void(size_t unit)> started;
  std::function<void(size_t unit)> finished;
  // Called about every 200 ms from the thread that called run_pool.
  std::function<void()> tick;
  // An exception that escaped work(unit), caught at the thread's entry so it
  // fails that unit only (from the worker thread, before `finished`).
  // Without a handler the unit is reported on stderr.
  std::function<void(size_t unit, const std::string& what)> crashed;
};

// Runs work(i) for every i < count. estimate() is asked before each start
// for the memory a unit is expected to need (it may learn from finished
// units). Returns when every unit has finished; an exception never leaves
// a worker thread (see PoolEvents::crashed).
void run_pool(size_t count, const PoolOptions& options, const std::function<uint64_t()>& estimate,
              const std::function<void(size_t)>& work, const PoolEvents& events);

// The number of CPUs this process may use.
int available_cpus();
// MemAvailable from /proc/meminfo, or 0.
uint64_t available_memory();

}  // namespace kiln::compile
