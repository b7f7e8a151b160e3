#include "services/ic/guest_log.h"

namespace hvkvm::root::ic {

GuestLogService::GuestLogService(Sink sink)
    : IcService(wire::kGuestLog),
      sink_(std::move(sink)),
      limiter_({kForwardBurst, kForwardInterval}, vmm::LogRateLimiter::Clock::now()) {}

// The burst is the channel's: a guest that reconnects starts with a full one.
void GuestLogService::on_ready(Clock::time_point now) { limiter_ = vmm::LogRateLimiter({kForwardBurst, kForwardInterval}, now); }

void GuestLogService::on_guest_request(const wire::Message& request, Clock::time_point now) {
    wire::GuestLogLine line;
    const bool valid = request.header.type == wire::MessageType::kGuestLog && !request.is_transaction() &&
                       request.header.framework_version == versions().framework &&
                       request.header.message_version == versions().message &&
                       wire::read_guest_log(request, line) == wire::IcError::kNone;
    if (!valid) {
        ++mutable_counters().malformed;
        warn_once(Warning::kMalformed, "a malformed log line");
        return;
    }
    guest_dropped_ += line.dropped;
    unreported_guest_drops_ += line.dropped;
    const auto held_back_before = limiter_.admit(now);
    if (!held_back_before) {
        ++held_back_;
        return;
    }
    ++forwarded_;
    const uint64_t lost = unreported_guest_drops_ + *held_back_before;
    unreported_guest_drops_ = 0;
    if (sink_) sink_(GuestLogEntry{line.level, lost, {line.text, line.size}});
}

nlohmann::json GuestLogService::describe() const {
    nlohmann::json description = IcService::describe();
    description["forwarded"] = forwarded_;
    description["held_back"] = held_back_;
    description["dropped_by_guest"] = guest_dropped_;
    return description;
}

}  // namespace hvkvm::root::ic
