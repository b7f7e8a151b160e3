// Log lines a guest can cause (a refused request, an unclaimed port, a faulting MSR, ...) must not
// let it flood the VMM's stderr. Each such line goes through a RateLimitedLog of its own: a burst
// of lines, then one per interval; the lines held back in between are counted, the count is
// appended to the next line that gets through, and whatever is still untold is reported once
// when the VM stops (report_suppressed).
#pragma once

#include <chrono>
#include <cstdint>
#include <fmt/format.h>
#include <mutex>
#include <optional>
#include <spdlog/spdlog.h>
#include <string>

namespace hvkvm::vmm {

// The decision alone, on explicit times (unit-tested): a token bucket of `burst` lines refilled
// with one line per `interval`.
class LogRateLimiter {
public:
    using Clock = std::chrono::steady_clock;
    struct Policy {
        uint32_t burst = 10;
        Clock::duration interval = std::chrono::seconds(1);
    };

    explicit LogRateLimiter(Policy policy, Clock::time_point start);

    // For one event at `now`: nullopt to hold the line back (it is counted), or the number of
    // lines held back since the last one that got through.
    std::optional<uint64_t> admit(Clock::time_point now);
    // Lines held back and not yet mentioned; resets the count.
    uint64_t take_suppressed();

private:
    Policy policy_;
    uint32_t tokens_;
    Clock::time_point last_refill_;
    uint64_t suppressed_ = 0;
};

class RateLimitedLog {
public:
    // `what` names the lines in the final report ("refused vCPU start requests").
    RateLimitedLog(spdlog::level::level_enum level, std::string what, LogRateLimiter::Policy policy = {});

    template <typename... Args>
    void log(fmt::format_string<Args...> format, Args&&... args) {
        if (!spdlog::should_log(level_)) return;  // would not be shown: nothing to limit or count
        const auto held_back = admit();
        if (!held_back) return;
        std::string line = fmt::format(format, std::forward<Args>(args)...);
        if (*held_back) line += fmt::format(" ({} similar lines suppressed)", *held_back);
        spdlog::log(level_, "{}", line);
    }

    // At the end of the run: one line for the lines still held back, if any.
    void report_suppressed();

private:
    std::optional<uint64_t> admit();

    const spdlog::level::level_enum level_;
    const std::string what_;
    std::mutex mutex_;
    LogRateLimiter limiter_;  // guarded by mutex_
};

}  // namespace hvkvm::vmm
