// The heartbeat service: once a second the host sends a sequence number and the guest answers
// with it plus one and its application state. A guest that has not answered for 5 s is reported
// lost (once), and reported again when it answers (resumed); every answer is reported too, so
// the VMM always knows the last sequence and its age.
#pragma once

#include <functional>

#include "services/ic/ic_service.h"

namespace hvkvm::root::ic {

struct HeartbeatEvent {
    enum class Kind { kBeat, kLost, kResumed };
    Kind kind;
    uint64_t sequence;           // the last answered sequence (0: none yet)
    uint32_t application_state;  // wire::ApplicationState of the last answer
    uint64_t beats;              // answers so far
    Clock::duration silent;      // kLost, kResumed: how long the guest had not answered
};

class HeartbeatService final : public IcService {
public:
    static constexpr Clock::duration kPeriod = std::chrono::seconds(1);
    static constexpr Clock::duration kLostAfter = std::chrono::seconds(5);
    using Observer = std::function<void(const HeartbeatEvent&)>;

    explicit HeartbeatService(Observer observer) : IcService(wire::kHeartbeat), observer_(std::move(observer)) {}

    bool control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) override;
    nlohmann::json describe() const override;
    // {"state", "sequence", "application_state", "age_ms", "beats", "lost"} as of `now`.
    nlohmann::json report(Clock::time_point now) const;

    bool is_lost() const { return lost_; }
    uint64_t last_sequence() const { return last_sequence_; }
    uint64_t beats() const { return beats_; }

private:
    void on_ready(Clock::time_point now) override;
    bool on_answer(const wire::Message& answer, Clock::time_point now) override;
    void on_failed(const char*, Clock::time_point) override {}
    std::optional<Clock::time_point> periodic_deadline() const override { return next_beat_; }
    void on_periodic(Clock::time_point now) override;
    void on_closed() override;

    void beat(Clock::time_point now);
    void notify(HeartbeatEvent::Kind kind, Clock::duration silent);

    Observer observer_;
    std::optional<Clock::time_point> next_beat_;
    Clock::time_point last_answer_{};  // or when the channel became ready, before any answer
    uint64_t next_sequence_ = 1;     // what the next request carries
    uint64_t awaited_sequence_ = 0;  // what the answer to the outstanding one must carry
    uint64_t last_sequence_ = 0;
    uint32_t application_state_ = 0;
    uint64_t beats_ = 0;
    uint64_t lost_episodes_ = 0;
    bool lost_ = false;
};

}  // namespace hvkvm::root::ic
