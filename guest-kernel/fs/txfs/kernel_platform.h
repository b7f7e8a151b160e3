// txfs's Platform in the guest kernel: the kernel heap, the sleeping Mutex, a condition variable
// built from a wait queue, a kernel thread per worker, the TSC clock, and the console for log
// lines, rate-limited so that a volume full of damage cannot flood it.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "core/interfaces.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::fs {

struct KernelPlatformStats {
    uint64_t live_allocations;  // allocate() minus release() (a leak check for tests)
    uint64_t log_lines;         // printed
    uint64_t log_lines_dropped; // over the rate limit
};

class KernelPlatform final : public txfs::Platform {
public:
    // At most `log_burst` lines per `log_window_ns`; the rest are counted, and the next printed line
    // says how many were dropped.
    static constexpr uint32_t kDefaultLogBurst = 20;
    static constexpr uint64_t kDefaultLogWindowNs = 1'000'000'000;
    explicit KernelPlatform(uint32_t log_burst = kDefaultLogBurst, uint64_t log_window_ns = kDefaultLogWindowNs)
        : log_burst_(log_burst), log_window_ns_(log_window_ns) {}

    void* allocate(size_t bytes) override;
    void release(void* memory, size_t bytes) override;
    txfs::Mutex* create_mutex() override;
    txfs::Condition* create_condition() override;
    txfs::Worker* start_worker(void (*entry)(void*), void* argument) override;
    uint64_t monotonic_ns() override;
    void log(txfs::LogLevel level, const char* message) override;

    KernelPlatformStats stats() const;

private:
    const uint32_t log_burst_;
    const uint64_t log_window_ns_;
    uint64_t live_allocations_ = 0;  // atomic
    mutable SpinLock log_lock_;              // guards the rate limiter and the counters below it
    uint64_t window_start_ns_ = 0;
    uint32_t lines_in_window_ = 0;
    uint64_t lines_printed_ = 0;
    uint64_t lines_dropped_ = 0;
    uint64_t dropped_since_print_ = 0;
};

}  // namespace hvkvm::guest::fs
