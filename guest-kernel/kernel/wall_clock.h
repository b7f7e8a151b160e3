// The guest's wall clock: UTC in nanoseconds since 1970-01-01, kept by the time-sync integration
// service (drivers/ic/timesync.cpp) on top of the monotonic TSC clock (time::now_ns()).
//
// set() steps the clock. correct() moves it towards a new reading: by a step when the error is
// kStepThresholdNs or more (or the clock was never set), else by slewing: the clock runs at most
// kMaxSlewPpm fast or slow until the error is absorbed, so small corrections never jump and never
// run the clock backwards (a 1 ms error takes 2 s; the 100 ms threshold would take 200 s, beyond
// which a step is the better evil). A new correction starts from what the clock shows, so the
// clock stays continuous between steps. Readable from any context.
#pragma once

#include <stdint.h>

#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::time {

inline constexpr int64_t kStepThresholdNs = 100'000'000;  // 100 ms
inline constexpr int64_t kMaxSlewPpm = 500;

struct WallClockStats {
    uint64_t steps;
    uint64_t slews;
    int64_t last_error_ns;  // the reading minus the clock, at the last set or correction
};

class WallClock {
public:
    enum class Correction { kStepped, kSlewing };

    // The clock at monotonic time `at_ns` (time::now_ns() scale); 0 until set.
    uint64_t at(uint64_t at_ns);
    bool is_set();
    // `wall_ns` is the wall clock at monotonic time `at_ns`.
    void set(uint64_t wall_ns, uint64_t at_ns);
    Correction correct(uint64_t wall_ns, uint64_t at_ns);
    WallClockStats stats();

private:
    uint64_t read_locked(uint64_t at_ns) const;
    void step_locked(uint64_t wall_ns, uint64_t at_ns);

    // The clock is base_wall + (t - base_mono), plus the part of `slew` absorbed by t:
    // kMaxSlewPpm of the time since base_mono, up to all of it.
    SpinLock lock_;  // guards everything below; taken with interrupts disabled
    bool set_ = false;
    uint64_t base_mono_ = 0;
    uint64_t base_wall_ = 0;
    int64_t slew_ = 0;
    WallClockStats stats_ = {};
};

// The kernel's wall clock (what the time-sync service keeps).
WallClock& kernel_wall_clock();
// Now, on the kernel's wall clock; 0 until the host has set it.
uint64_t wall_clock();

}  // namespace hvkvm::guest::time
