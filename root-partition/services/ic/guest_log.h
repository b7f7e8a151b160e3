// The guest-log service (hvkvm's own channel, ic.h kGuestLog): after negotiation the guest sends
// its kernel log lines as untransacted requests; each valid one goes to the sink (the VMM prints
// it as "guest-log: ..."). The root forwards at most kForwardBurst lines at once and
// kForwardPerSecond after that; the lines held back are counted and the count rides on the next
// line forwarded, with the lines the guest itself could not send.
#pragma once

#include <functional>
#include <string_view>

#include "log/rate_limited_log.h"
#include "services/ic/ic_service.h"

namespace hvkvm::root::ic {

struct GuestLogEntry {
    wire::GuestLogLevel level;
    uint64_t lost;          // lines before this one that never arrived (guest ring full, root limit)
    std::string_view text;  // 1..kGuestLogMaxText bytes, as the guest sent them
};

class GuestLogService final : public IcService {
public:
    static constexpr uint32_t kForwardBurst = 100;
    static constexpr auto kForwardInterval = std::chrono::milliseconds(5);  // 200 lines/s
    using Sink = std::function<void(const GuestLogEntry&)>;

    explicit GuestLogService(Sink sink);

    nlohmann::json describe() const override;
    uint64_t forwarded() const { return forwarded_; }
    uint64_t held_back() const { return held_back_; }

private:
    bool on_answer(const wire::Message&, Clock::time_point) override { return false; }  // it asks nothing
    void on_failed(const char*, Clock::time_point) override {}
    void on_guest_request(const wire::Message& request, Clock::time_point now) override;
    void on_ready(Clock::time_point now) override;

    Sink sink_;
    vmm::LogRateLimiter limiter_;
    uint64_t forwarded_ = 0;
    uint64_t held_back_ = 0;      // by the root's limit
    uint64_t guest_dropped_ = 0;  // reported by the guest
    uint64_t unreported_guest_drops_ = 0;  // not yet told with a forwarded line
};

}  // namespace hvkvm::root::ic
