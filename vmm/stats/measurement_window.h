// The guest's measurement window: KVM's vCPU counters taken when the guest opens it and when it
// closes it (abi::kStatsWindowPort), so that a benchmark reports the exits and interrupts of its
// workload alone rather than of the whole boot. The port is written from any vCPU thread; the
// window's state is reachable only through its lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "stats/kvm_stats.h"

namespace hvkvm::vmm {

// `after` less `before`, matched by name; a counter missing from `before` counts from 0. Counters
// that went backwards (never, for KVM's cumulative ones) give 0 rather than a wrapped value.
std::vector<KvmStat> counter_difference(const std::vector<KvmStat>& after, const std::vector<KvmStat>& before);

class MeasurementWindow {
public:
    using Clock = std::chrono::steady_clock;

    struct Result {
        double milliseconds;
        std::vector<KvmStat> counters;  // the difference over the window, summed over vCPUs
        uint32_t windows;               // how many were closed; the result is the last one's
    };

    // Open (again: the earlier opening is forgotten) with the counters as they are now.
    void open(std::vector<KvmStat> counters, Clock::time_point now);
    // Close the open window; false (nothing changes) when none is open.
    bool close(const std::vector<KvmStat>& counters, Clock::time_point now);
    std::optional<Result> last() const;

private:
    mutable std::mutex mutex_;
    struct Opened {
        std::vector<KvmStat> counters;
        Clock::time_point time;
    };
    std::optional<Opened> opened_;   // guarded by mutex_
    std::optional<Result> closed_;   // guarded by mutex_
};

}  // namespace hvkvm::vmm
