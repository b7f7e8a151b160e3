#include "services/ic/heartbeat.h"

namespace hvkvm::root::ic {
namespace {

const char* application_state_name(uint32_t state) {
    switch (static_cast<wire::ApplicationState>(state)) {
    case wire::ApplicationState::kUnknown: return "unknown";
    case wire::ApplicationState::kHealthy: return "healthy";
    case wire::ApplicationState::kCritical: return "critical";
    case wire::ApplicationState::kStopped: return "stopped";
    }
    return "?";
}

int64_t milliseconds(Clock::duration duration) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
}

}  // namespace

void HeartbeatService::on_ready(Clock::time_point now) {
    last_answer_ = now;  // the 5 s without an answer count from here
    beat(now);
}

void HeartbeatService::beat(Clock::time_point now) {
    next_beat_ = now + kPeriod;
    const wire::HeartbeatMessage request{next_sequence_, 0, 0};
    if (send_fixed_request(&request, sizeof request, now)) awaited_sequence_ = next_sequence_ + 1;
}

void HeartbeatService::on_periodic(Clock::time_point now) {
    const Clock::duration silent = now - last_answer_;
    if (!lost_ && silent >= kLostAfter) {
        lost_ = true;
        ++lost_episodes_;
        notify(HeartbeatEvent::Kind::kLost, silent);
    }
    beat(now);  // when the last one is still outstanding, this one is skipped
}

bool HeartbeatService::on_answer(const wire::Message& answer, Clock::time_point now) {
    wire::HeartbeatMessage body;
    if (wire::read_body(answer, body) != wire::IcError::kNone) return false;
    if (body.sequence != awaited_sequence_) return false;
    if (body.application_state > static_cast<uint32_t>(wire::ApplicationState::kStopped)) return false;
    const Clock::duration silent = now - last_answer_;
    last_sequence_ = body.sequence;
    next_sequence_ = body.sequence;  // the next request carries the guest's count on
    application_state_ = body.application_state;
    last_answer_ = now;
    ++beats_;
    if (lost_) {
        lost_ = false;
        notify(HeartbeatEvent::Kind::kResumed, silent);
    }
    notify(HeartbeatEvent::Kind::kBeat, silent);
    return true;
}

void HeartbeatService::on_closed() {
    next_beat_.reset();
    lost_ = false;  // a closed channel is not a lost guest: the guest closed it
}

void HeartbeatService::notify(HeartbeatEvent::Kind kind, Clock::duration silent) {
    if (observer_) observer_(HeartbeatEvent{kind, last_sequence_, application_state_, beats_, silent});
}

nlohmann::json HeartbeatService::report(Clock::time_point now) const {
    const char* status = !is_ready() ? (state() == State::kClosed ? "not connected" : state_name(state()))
                         : lost_     ? "lost"
                         : beats_    ? "beating"
                                     : "no answer yet";
    nlohmann::json answer = {{"ok", true},        {"state", status},   {"sequence", last_sequence_},
                             {"beats", beats_},   {"lost", lost_episodes_},
                             {"application_state", application_state_name(application_state_)}};
    if (beats_) answer["age_ms"] = milliseconds(now - last_answer_);
    return answer;
}

bool HeartbeatService::control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) {
    if (request.value("command", "") != "heartbeat") return false;
    ControlReply answer = std::move(reply);
    answer(report(now));
    return true;
}

nlohmann::json HeartbeatService::describe() const {
    nlohmann::json description = IcService::describe();
    description["heartbeat"] = report(Clock::now());
    description["heartbeat"].erase("ok");
    return description;
}

}  // namespace hvkvm::root::ic
