// The host side of one integration service (vmbus/services/ic.h), as a state machine with no I/O
// of its own: the VSP adapter (ic_vsp.h) feeds it the guest's packets and the time, and it sends
// through an IcTransport. Tests drive it the same way with a scripted guest and a fake clock.
//
// Common to every IC: on open, the host offers its framework and message versions and accepts
// only an answer naming one of each that it offered (else the channel stays unused: no common
// version, or the offer is repeated after a bad answer or a timeout). Then the service sends
// requests, one at a time: each carries a fresh VMBus transaction id (the IC header's 8-bit id is
// its low byte) and must be answered within the service's timeout by a response with the same
// ids, type and versions. Anything else the guest sends is counted and dropped: packets that are
// not IC messages (malformed), answers to nothing outstanding (unsolicited), answers to a request
// that already timed out (late), and requests on a service that takes none. An answer to the
// outstanding request that fails validation ends that request (bad answer).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "control_reply.h"
#include "vmbus/services/ic_codec.h"

namespace hvkvm::root::ic {

namespace wire = ::hvkvm::vmbus::services::ic;
using Clock = std::chrono::steady_clock;
using root::ControlReply;

// How a service reaches the guest: one in-band packet (no completion requested) with a VMBus
// transaction id. False if it could not be sent now (ring full, channel broken).
class IcTransport {
public:
    virtual bool send(uint64_t transaction_id, const wire::Packet& packet) = 0;

protected:
    ~IcTransport() = default;
};

struct IcCounters {
    uint64_t requests = 0;       // sent (negotiation included)
    uint64_t answers = 0;        // valid answers to the outstanding request
    uint64_t timeouts = 0;
    uint64_t bad_answers = 0;    // the outstanding request's answer failed validation
    uint64_t unsolicited = 0;    // answers to nothing outstanding; guest requests not taken
    uint64_t late = 0;           // answers to a request that had timed out
    uint64_t malformed = 0;      // packets that are not IC messages
    uint64_t send_failures = 0;  // the ring had no room
};

class IcService {
public:
    enum class State { kClosed, kNegotiating, kReady, kNoCommonVersion };
    static constexpr Clock::duration kDefaultTimeout = std::chrono::milliseconds(1500);
    // After a bad negotiation answer or none, the offer is made again this much later.
    static constexpr Clock::duration kRenegotiateDelay = std::chrono::seconds(2);

    explicit IcService(const wire::Service& service, Clock::duration timeout = kDefaultTimeout);
    virtual ~IcService() = default;
    IcService(const IcService&) = delete;
    IcService& operator=(const IcService&) = delete;

    const wire::Service& service() const { return service_; }
    const char* name() const { return service_.name; }
    State state() const { return state_; }
    const wire::Versions& versions() const { return versions_; }
    const IcCounters& counters() const { return counters_; }
    bool is_ready() const { return state_ == State::kReady; }

    // The channel opened: offer versions. `transport` must stay valid until close().
    void open(IcTransport& transport, Clock::time_point now);
    void close();
    // One packet from the guest: `payload` is the receiver's private copy of `size` bytes.
    void on_packet(uint64_t transaction_id, const uint8_t* payload, uint32_t size, Clock::time_point now);
    // Timeouts and periodic work due at `now`.
    void on_timer(Clock::time_point now);
    // When on_timer() has something to do next (nullopt: nothing until a packet arrives).
    std::optional<Clock::time_point> next_deadline() const;

    // A management request (`vmm ctl`) this service answers: true if it took it (then `reply`
    // was moved from, and is called exactly once, now or later).
    virtual bool control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now);
    // The service's state for `vmm ctl channels`.
    virtual nlohmann::json describe() const;

protected:
    // Ready and no request outstanding.
    bool is_idle() const { return is_ready() && !pending_; }
    // Sends a request of the service's message type: `build(packet, versions, ic_transaction_id)`
    // frames it. False (nothing outstanding) if not idle or the packet cannot be built or sent.
    bool send_request(const std::function<bool(wire::Packet&, wire::Versions, uint8_t)>& build, Clock::time_point now);
    bool send_fixed_request(const void* body, uint32_t size, Clock::time_point now);

    // Negotiation succeeded.
    virtual void on_ready(Clock::time_point) {}
    // The answer to the outstanding request (framing, ids, type and versions checked): false if its
    // body is malformed (counted as a bad answer, then on_failed()).
    virtual bool on_answer(const wire::Message& answer, Clock::time_point now) = 0;
    // The outstanding request ended without a valid answer.
    virtual void on_failed(const char* why, Clock::time_point now) = 0;
    // A request from the guest (only the guest log takes them); by default counted as unsolicited.
    virtual void on_guest_request(const wire::Message& request, Clock::time_point now);
    // Periodic work while ready.
    virtual std::optional<Clock::time_point> periodic_deadline() const { return std::nullopt; }
    virtual void on_periodic(Clock::time_point) {}
    // The channel closed (any outstanding request has been failed first).
    virtual void on_closed() {}

    // A problem worth one log line per service and kind (a hostile guest may repeat it at will;
    // the counters count every occurrence).
    enum class Warning : uint32_t { kMalformed, kUnsolicited, kLate, kBadAnswer, kTimeout, kSendFailure, kVersions, kService };
    void warn_once(Warning kind, const std::string& detail);
    IcCounters& mutable_counters() { return counters_; }

private:
    struct Pending {
        uint64_t id;
        uint8_t ic_id;
        wire::MessageType type;
        Clock::time_point deadline;
    };

    bool transmit(const wire::Packet& packet, wire::MessageType type, Clock::time_point now);
    void offer_versions(Clock::time_point now);
    void on_response(uint64_t transaction_id, const wire::Message& message, Clock::time_point now);
    void on_negotiation_answer(const wire::Message& message, Clock::time_point now);
    void fail_pending(const char* why, Clock::time_point now);

    const wire::Service& service_;
    const Clock::duration timeout_;
    IcTransport* transport_ = nullptr;
    State state_ = State::kClosed;
    wire::Versions versions_{};
    std::optional<Pending> pending_;
    std::optional<uint64_t> timed_out_id_;  // the last request that timed out (its answer is late)
    std::optional<Clock::time_point> renegotiate_at_;
    uint64_t next_transaction_id_ = 1;
    IcCounters counters_;
    uint32_t warned_ = 0;  // bit per kind of warning already logged
};

const char* state_name(IcService::State state);

}  // namespace hvkvm::root::ic
