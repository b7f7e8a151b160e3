// The background migration of misplaced pages toward their home nodes (the mechanism is
// mm/migration.h): one kernel thread that sleeps until pages become misplaced, then starts a pass
// moving at most rate x 10 ms pages every 10 ms until none is left. A page whose home node is at its low
// watermark stays where it is; the thread retries every 100 ms while such pages exist.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::migration {

inline constexpr uint64_t kDefaultPagesPerSecond = 6400;  // 25 MiB/s
inline constexpr uint64_t kPeriodNs = 10'000'000;
inline constexpr uint64_t kBlockedRetryNs = 100'000'000;

// Boot, once the scheduler runs: page faults on migrating pages wait instead of crashing, and
// with two or more nodes the migration thread starts (`pages_per_second` from the command line).
void start(uint64_t pages_per_second = kDefaultPagesPerSecond);

// At most this many pages per second; 0 stops migration (misplaced pages stay).
void set_rate(uint64_t pages_per_second);
uint64_t rate();
// Pages one pass may move at `pages_per_second` (at least 1).
uint64_t budget_per_pass(uint64_t pages_per_second);

}  // namespace hvkvm::guest::migration
