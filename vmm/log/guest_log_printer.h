// The guest's log lines (the guest-log integration service, forwarded by the root partition),
// printed on the VMM's stderr as "guest-log: TEXT" ("guest-log: warning: TEXT" and "error:" for
// those levels). The text is the guest's: every byte outside printable ASCII becomes '?', so it
// can carry no terminal control sequence; lines are cut at kMaxPrintedBytes. Printing goes
// through a rate limit (a burst, then one line per interval); what was not shown (lines the
// guest or the root partition dropped, lines held back here) is counted on the next line shown
// and once at the end (report_suppressed).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "log/rate_limited_log.h"

namespace hvkvm::vmm {

class GuestLogPrinter {
public:
    static constexpr size_t kMaxPrintedBytes = 200;
    static constexpr LogRateLimiter::Policy kDefaultPolicy{20, std::chrono::milliseconds(100)};

    explicit GuestLogPrinter(LogRateLimiter::Policy policy = kDefaultPolicy);
    // Prints to `logger` instead of stderr (tests).
    GuestLogPrinter(LogRateLimiter::Policy policy, std::shared_ptr<spdlog::logger> logger);

    // `level`: 0 info, 1 warning, 2 error (others print as error); `lost`: lines before this one
    // that never reached the VMM. Any thread.
    void print(uint32_t level, uint64_t lost, std::string_view text);
    void report_suppressed();

    // What print() shows of `text`.
    static std::string sanitize(std::string_view text);

    uint64_t printed() const;

private:
    std::shared_ptr<spdlog::logger> logger_;
    mutable std::mutex mutex_;  // guards the members below
    LogRateLimiter limiter_;
    uint64_t lost_ = 0;     // not yet mentioned
    uint64_t printed_ = 0;
};

}  // namespace hvkvm::vmm
