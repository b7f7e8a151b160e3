// A scripted guest for the host's integration services: it reads what a service sent through a
// fake transport, answers with the shared codec (or with whatever a hostile guest would send), and
// moves a fake clock forward the way the event loop would, running every deadline on the way.
#pragma once

#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "services/ic/ic_service.h"

namespace hvkvm::root::ic::test {

struct SentPacket {
    uint64_t transaction_id;
    std::vector<uint8_t> bytes;
};

class FakeTransport final : public IcTransport {
public:
    bool send(uint64_t transaction_id, const wire::Packet& packet) override {
        if (full) return false;
        sent.push_back({transaction_id, std::vector<uint8_t>(packet.bytes, packet.bytes + packet.size)});
        return true;
    }
    std::vector<SentPacket> sent;
    bool full = false;
};

inline constexpr wire::Versions kV3{{3, 0}, {3, 0}};

class Script {
public:
    explicit Script(IcService& service) : service_(service) {}

    Clock::time_point now = Clock::time_point{} + std::chrono::hours(1);
    FakeTransport transport;

    void open() { service_.open(transport, now); }
    size_t sent_count() const { return transport.sent.size(); }
    const SentPacket& last() const {
        REQUIRE(!transport.sent.empty());
        return transport.sent.back();
    }
    // The last packet sent, parsed.
    wire::Message last_message() const {
        const SentPacket& packet = last();
        wire::Message message;
        REQUIRE(wire::parse_message(packet.bytes.data(), static_cast<uint32_t>(packet.bytes.size()), message) ==
                wire::IcError::kNone);
        return message;
    }
    template <typename Body>
    Body last_body() const {
        Body body{};
        REQUIRE(wire::read_body(last_message(), body) == wire::IcError::kNone);
        return body;
    }

    void deliver(uint64_t transaction_id, const wire::Packet& packet) {
        service_.on_packet(transaction_id, packet.bytes, packet.size, now);
    }
    void deliver(uint64_t transaction_id, const std::vector<uint8_t>& bytes) {
        service_.on_packet(transaction_id, bytes.data(), static_cast<uint32_t>(bytes.size()), now);
    }

    // The guest's answer to the outstanding negotiation: `chosen`, or nothing in common.
    void negotiate(const wire::Versions* chosen) {
        wire::Packet answer;
        REQUIRE(wire::build_negotiate_response(answer, last_message().header, chosen));
        deliver(last().transaction_id, answer);
    }
    void negotiate(wire::Versions chosen) { negotiate(&chosen); }

    // The response to the last request with `body` and `status`, as bytes a test may spoil.
    template <typename Body>
    std::vector<uint8_t> response_to_last(const Body& body, uint32_t status = wire::kStatusSuccess) const {
        wire::Packet answer;
        REQUIRE(wire::build_response(answer, last_message().header, status, &body, sizeof body));
        return std::vector<uint8_t>(answer.bytes, answer.bytes + answer.size);
    }
    template <typename Body>
    void answer_last(const Body& body, uint32_t status = wire::kStatusSuccess) {
        deliver(last().transaction_id, response_to_last(body, status));
    }

    // Moves the clock to `now + step`, running each deadline that falls on the way at its time.
    void advance(Clock::duration step) {
        const Clock::time_point target = now + step;
        for (int guard = 0; guard < 100000; ++guard) {
            const auto deadline = service_.next_deadline();
            if (!deadline || *deadline > target) break;
            now = std::max(now, *deadline);
            service_.on_timer(now);
        }
        now = target;
    }

private:
    IcService& service_;
};

// Collects a service's answers to management requests.
struct ControlAnswers {
    std::vector<nlohmann::json> received;
    bool ask(IcService& service, const nlohmann::json& request, Clock::time_point now) {
        ControlReply reply = [this](nlohmann::json answer) { received.push_back(std::move(answer)); };
        return service.control(request, reply, now);
    }
};

template <typename Field>
void poke(std::vector<uint8_t>& bytes, size_t offset, Field value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
}
inline constexpr size_t kHeaderAt = sizeof(wire::PipeHeader);
inline constexpr size_t kBodyAt = wire::kFramingBytes;

}  // namespace hvkvm::root::ic::test
