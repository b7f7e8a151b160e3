#include "log/rate_limited_log.h"

#include <algorithm>

namespace hvkvm::vmm {

LogRateLimiter::LogRateLimiter(Policy policy, Clock::time_point start)
    : policy_(policy), tokens_(policy.burst), last_refill_(start) {}

std::optional<uint64_t> LogRateLimiter::admit(Clock::time_point now) {
    if (policy_.interval.count() > 0 && now > last_refill_) {
        const auto earned = static_cast<uint64_t>((now - last_refill_) / policy_.interval);
        if (earned > 0) {
            tokens_ = static_cast<uint32_t>(std::min<uint64_t>(policy_.burst, tokens_ + earned));
            last_refill_ += policy_.interval * static_cast<Clock::rep>(earned);
        }
    }
    if (tokens_ == 0) {
        ++suppressed_;
        return std::nullopt;
    }
    --tokens_;
    return take_suppressed();
}

uint64_t LogRateLimiter::take_suppressed() { return std::exchange(suppressed_, 0); }

RateLimitedLog::RateLimitedLog(spdlog::level::level_enum level, std::string what, LogRateLimiter::Policy policy)
    : level_(level), what_(std::move(what)), limiter_(policy, LogRateLimiter::Clock::now()) {}

std::optional<uint64_t> RateLimitedLog::admit() {
    std::lock_guard lock(mutex_);
    return limiter_.admit(LogRateLimiter::Clock::now());
}

void RateLimitedLog::report_suppressed() {
    uint64_t untold;
    {
        std::lock_guard lock(mutex_);
        untold = limiter_.take_suppressed();
    }
    if (untold) spdlog::log(level_, "{} more {} were not logged", untold, what_);
}

}  // namespace hvkvm::vmm
