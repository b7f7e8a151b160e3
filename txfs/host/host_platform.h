// The txfs Platform on a Linux host: heap memory, std::mutex/condition_variable, std::thread,
// steady_clock, and a log that keeps every message (tests read the repair log).
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "core/interfaces.h"

namespace txfs::host {

class HostPlatform final : public Platform {
public:
    // echo: also print each message to stderr.
    explicit HostPlatform(bool echo = false) : echo_(echo) {}

    void* allocate(size_t bytes) override;
    void release(void* memory, size_t bytes) override;
    Mutex* create_mutex() override;
    Condition* create_condition() override;
    Worker* start_worker(void (*entry)(void*), void* argument) override;
    uint64_t monotonic_ns() override;
    void log(LogLevel level, const char* message) override;

    std::vector<std::string> messages() const;
    bool logged(const std::string& fragment) const;  // some message contains fragment
    void clear_messages();
    // Bytes allocated and not yet released (a leak check for tests).
    int64_t outstanding_bytes() const;

private:
    bool echo_;
    mutable std::mutex lock_;
    std::vector<std::string> messages_;  // guarded by lock_
    std::atomic<int64_t> outstanding_{0};
};

}  // namespace txfs::host
