#include "services/ic/ic_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace hvkvm::root::ic {

const char* state_name(IcService::State state) {
    switch (state) {
    case IcService::State::kClosed: return "closed";
    case IcService::State::kNegotiating: return "negotiating";
    case IcService::State::kReady: return "ready";
    case IcService::State::kNoCommonVersion: return "no common version";
    }
    return "?";
}

IcService::IcService(const wire::Service& service, Clock::duration timeout) : service_(service), timeout_(timeout) {}

void IcService::open(IcTransport& transport, Clock::time_point now) {
    transport_ = &transport;
    state_ = State::kNegotiating;
    pending_.reset();
    timed_out_id_.reset();
    renegotiate_at_.reset();
    offer_versions(now);
}

void IcService::close() {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;  // first: what on_failed() does next must not send
    if (pending_) fail_pending("the channel closed", Clock::now());
    transport_ = nullptr;
    renegotiate_at_.reset();
    on_closed();
}

void IcService::offer_versions(Clock::time_point now) {
    wire::Packet packet;
    if (!wire::build_negotiate_request(packet, wire::kFrameworks, wire::message_versions(service_),
                                       static_cast<uint8_t>(next_transaction_id_)))
        return;
    if (!transmit(packet, wire::MessageType::kNegotiate, now)) renegotiate_at_ = now + kRenegotiateDelay;
}

bool IcService::transmit(const wire::Packet& packet, wire::MessageType type, Clock::time_point now) {
    // The IC header's 8-bit id is the low byte of the VMBus id (the packet was built with it).
    const uint64_t id = next_transaction_id_++;
    if (!transport_ || !transport_->send(id, packet)) {
        ++counters_.send_failures;
        warn_once(Warning::kSendFailure, "a request did not fit the ring");
        return false;
    }
    ++counters_.requests;
    pending_ = Pending{id, static_cast<uint8_t>(id), type, now + timeout_};
    return true;
}

bool IcService::send_request(const std::function<bool(wire::Packet&, wire::Versions, uint8_t)>& build,
                             Clock::time_point now) {
    if (!is_idle()) return false;
    wire::Packet packet;
    if (!build(packet, versions_, static_cast<uint8_t>(next_transaction_id_))) return false;
    return transmit(packet, service_.message_type, now);
}

bool IcService::send_fixed_request(const void* body, uint32_t size, Clock::time_point now) {
    return send_request(
        [&](wire::Packet& packet, wire::Versions versions, uint8_t ic_id) {
            return wire::build_packet(packet, wire::request_header(service_.message_type, versions, ic_id), body, size);
        },
        now);
}

void IcService::on_packet(uint64_t transaction_id, const uint8_t* payload, uint32_t size, Clock::time_point now) {
    if (state_ == State::kClosed) return;
    wire::Message message;
    const wire::IcError error = wire::parse_message(payload, size, message);
    if (error != wire::IcError::kNone) {
        ++counters_.malformed;
        warn_once(Warning::kMalformed, wire::ic_error_name(error));
        return;
    }
    if (message.is_request()) {
        if (is_ready()) on_guest_request(message, now);
        else ++counters_.unsolicited;
        return;
    }
    on_response(transaction_id, message, now);
}

void IcService::on_guest_request(const wire::Message& request, Clock::time_point) {
    ++counters_.unsolicited;
    warn_once(Warning::kUnsolicited, std::string("a guest request of type ") + wire::message_type_name(request.header.type));
}

void IcService::on_response(uint64_t transaction_id, const wire::Message& message, Clock::time_point now) {
    if (!pending_ || pending_->id != transaction_id) {
        if (timed_out_id_ && *timed_out_id_ == transaction_id) {
            ++counters_.late;
            timed_out_id_.reset();
        } else {
            ++counters_.unsolicited;
            warn_once(Warning::kUnsolicited, "an answer to no outstanding request");
        }
        return;
    }
    const Pending request = *pending_;
    const wire::Header& header = message.header;
    const char* wrong = nullptr;
    if (!message.is_transaction()) wrong = "an answer without the transaction flag";
    else if (header.transaction_id != request.ic_id) wrong = "an answer with another IC transaction id";
    else if (header.type != request.type) wrong = "an answer of another message type";
    else if (request.type != wire::MessageType::kNegotiate &&
             (!(header.framework_version == versions_.framework) || !(header.message_version == versions_.message)))
        wrong = "an answer with versions that were not negotiated";
    if (wrong) {
        ++counters_.bad_answers;
        warn_once(Warning::kBadAnswer, wrong);
        fail_pending(wrong, now);
        return;
    }
    pending_.reset();
    if (request.type == wire::MessageType::kNegotiate) {
        on_negotiation_answer(message, now);
        return;
    }
    if (!on_answer(message, now)) {
        ++counters_.bad_answers;
        warn_once(Warning::kBadAnswer, "an answer whose body is malformed");
        on_failed("a malformed answer", now);
        return;
    }
    ++counters_.answers;
}

void IcService::on_negotiation_answer(const wire::Message& message, Clock::time_point now) {
    wire::Versions chosen;
    const wire::IcError error =
        wire::read_negotiate_response(message, wire::kFrameworks, wire::message_versions(service_), chosen);
    if (error == wire::IcError::kNoCommonVersion) {
        ++counters_.answers;
        state_ = State::kNoCommonVersion;
        warn_once(Warning::kVersions, "the guest supports none of the offered versions; the channel stays unused");
        return;
    }
    if (error != wire::IcError::kNone) {
        ++counters_.bad_answers;
        warn_once(Warning::kVersions, std::string("a bad version answer (") + wire::ic_error_name(error) + "); offering again");
        renegotiate_at_ = now + kRenegotiateDelay;
        return;
    }
    ++counters_.answers;
    versions_ = chosen;
    state_ = State::kReady;
    spdlog::debug("{}: versions framework {}.{}, message {}.{}", name(), chosen.framework.major, chosen.framework.minor,
                  chosen.message.major, chosen.message.minor);
    on_ready(now);
}

void IcService::fail_pending(const char* why, Clock::time_point now) {
    const wire::MessageType type = pending_->type;
    pending_.reset();
    if (type == wire::MessageType::kNegotiate) {
        if (state_ == State::kNegotiating) renegotiate_at_ = now + kRenegotiateDelay;
        return;
    }
    on_failed(why, now);
}

void IcService::on_timer(Clock::time_point now) {
    if (state_ == State::kClosed) return;
    if (pending_ && pending_->deadline <= now) {
        ++counters_.timeouts;
        timed_out_id_ = pending_->id;
        warn_once(Warning::kTimeout, "the guest did not answer a request in time");
        fail_pending("the guest did not answer in time", now);
    }
    if (state_ == State::kNegotiating && !pending_ && renegotiate_at_ && *renegotiate_at_ <= now) {
        renegotiate_at_.reset();
        offer_versions(now);
    }
    if (is_ready()) {
        const auto periodic = periodic_deadline();
        if (periodic && *periodic <= now) on_periodic(now);
    }
}

std::optional<Clock::time_point> IcService::next_deadline() const {
    std::optional<Clock::time_point> next;
    auto consider = [&](std::optional<Clock::time_point> when) {
        if (when && (!next || *when < *next)) next = when;
    };
    if (pending_) consider(pending_->deadline);
    if (state_ == State::kNegotiating && !pending_) consider(renegotiate_at_);
    if (is_ready()) consider(periodic_deadline());
    return next;
}

bool IcService::control(const nlohmann::json&, ControlReply&, Clock::time_point) { return false; }

nlohmann::json IcService::describe() const {
    nlohmann::json description = {{"state", state_name(state_)}};
    if (is_ready())
        description["versions"] = fmt::format("framework {}.{}, message {}.{}", versions_.framework.major,
                                        versions_.framework.minor, versions_.message.major, versions_.message.minor);
    description["counters"] = {{"requests", counters_.requests},       {"answers", counters_.answers},
                         {"timeouts", counters_.timeouts},       {"bad_answers", counters_.bad_answers},
                         {"unsolicited", counters_.unsolicited}, {"late", counters_.late},
                         {"malformed", counters_.malformed},     {"send_failures", counters_.send_failures}};
    return description;
}

void IcService::warn_once(Warning kind, const std::string& detail) {
    const uint32_t bit = 1u << static_cast<uint32_t>(kind);
    if (warned_ & bit) return;
    warned_ |= bit;
    spdlog::warn("{}: {} (later ones are only counted)", name(), detail);
}

}  // namespace hvkvm::root::ic
