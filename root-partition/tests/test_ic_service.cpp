// The rules every integration service shares (ic_service.h), driven through the heartbeat
// service: version negotiation, one request at a time with its timeout, and every kind of answer
// a hostile guest can give instead of the right one.
#include "ic_script.h"
#include "services/ic/heartbeat.h"

using namespace hvkvm::root::ic;
using namespace hvkvm::root::ic::test;
using namespace std::chrono_literals;

namespace {

struct Fixture {
    std::vector<HeartbeatEvent> events;
    HeartbeatService service{[this](const HeartbeatEvent& event) { events.push_back(event); }};
    Script script{service};

    void open_and_negotiate() {
        script.open();
        script.negotiate(kV3);
        REQUIRE(service.is_ready());
    }
    // The guest's correct answer to the heartbeat request just sent.
    std::vector<uint8_t> good_answer() {
        const auto request = script.last_body<wire::HeartbeatMessage>();
        return script.response_to_last(wire::HeartbeatMessage{request.sequence + 1, 1, 0});
    }
};

}  // namespace

TEST_CASE("open offers framework 1.0 and 3.0 and the service's message versions", "[ic]") {
    Fixture f;
    f.script.open();
    REQUIRE(f.script.sent_count() == 1);
    const wire::Message offer = f.script.last_message();
    CHECK(offer.header.type == wire::MessageType::kNegotiate);
    CHECK(offer.is_request());
    CHECK(offer.header.transaction_id == static_cast<uint8_t>(f.script.last().transaction_id));
    const wire::Version mine[] = {{3, 0}};
    wire::Versions chosen;
    REQUIRE(wire::choose_versions(offer, wire::kFrameworks, wire::list_of(mine), chosen) == wire::IcError::kNone);
    CHECK(f.service.state() == IcService::State::kNegotiating);
}

TEST_CASE("an accepted negotiation makes the service ready with the guest's choice; the first beat follows", "[ic]") {
    Fixture f;
    f.script.open();
    f.script.negotiate(wire::Versions{{1, 0}, {1, 0}});
    CHECK(f.service.is_ready());
    CHECK(f.service.versions().message == wire::Version{1, 0});
    REQUIRE(f.script.sent_count() == 2);
    const wire::Message beat = f.script.last_message();
    CHECK(beat.header.type == wire::MessageType::kHeartbeat);
    CHECK(beat.header.message_version == wire::Version{1, 0});
    CHECK(beat.is_transaction());
}

TEST_CASE("a negotiation answer naming a version the host did not offer is refused, and the offer repeated", "[ic][hostile]") {
    Fixture f;
    f.script.open();
    f.script.negotiate(wire::Versions{{3, 0}, {4, 0}});
    CHECK_FALSE(f.service.is_ready());
    CHECK(f.service.counters().bad_answers == 1);
    f.script.advance(IcService::kRenegotiateDelay - 1ms);
    CHECK(f.script.sent_count() == 1);
    f.script.advance(1ms);
    REQUIRE(f.script.sent_count() == 2);
    CHECK(f.script.last_message().header.type == wire::MessageType::kNegotiate);
    f.script.negotiate(kV3);
    CHECK(f.service.is_ready());
}

TEST_CASE("a guest with no version in common leaves the channel unused", "[ic]") {
    Fixture f;
    f.script.open();
    f.script.negotiate(nullptr);
    CHECK(f.service.state() == IcService::State::kNoCommonVersion);
    f.script.advance(30s);
    CHECK(f.script.sent_count() == 1);
}

TEST_CASE("an unanswered negotiation times out and is offered again; its late answer is counted, not taken", "[ic][hostile]") {
    Fixture f;
    f.script.open();
    const SentPacket first = f.script.last();
    f.script.advance(IcService::kDefaultTimeout);
    CHECK(f.service.counters().timeouts == 1);
    f.script.advance(IcService::kRenegotiateDelay);
    REQUIRE(f.script.sent_count() == 2);
    wire::Message old_offer;
    REQUIRE(wire::parse_message(first.bytes.data(), static_cast<uint32_t>(first.bytes.size()), old_offer) == wire::IcError::kNone);
    wire::Packet late;
    REQUIRE(wire::build_negotiate_response(late, old_offer.header, &kV3));
    f.script.deliver(first.transaction_id, late);
    CHECK(f.service.counters().late == 1);
    CHECK_FALSE(f.service.is_ready());
    f.script.negotiate(kV3);
    CHECK(f.service.is_ready());
}

TEST_CASE("a valid heartbeat answer is taken and reported", "[ic]") {
    Fixture f;
    f.open_and_negotiate();
    f.script.deliver(f.script.last().transaction_id, f.good_answer());
    CHECK(f.service.beats() == 1);
    CHECK(f.service.counters().answers == 2);  // negotiation + beat
    REQUIRE(f.events.size() == 1);
    CHECK(f.events[0].kind == HeartbeatEvent::Kind::kBeat);
    CHECK(f.events[0].sequence == 2);
}

TEST_CASE("answers with the wrong IC transaction id, type, flags or versions end the request as bad answers", "[ic][hostile]") {
    Fixture f;
    f.open_and_negotiate();
    const size_t id_at = kHeaderAt + offsetof(wire::Header, transaction_id);
    const size_t type_at = kHeaderAt + offsetof(wire::Header, type);
    const size_t flags_at = kHeaderAt + offsetof(wire::Header, flags);
    const size_t version_at = kHeaderAt + offsetof(wire::Header, message_version);
    const size_t framework_at = kHeaderAt + offsetof(wire::Header, framework_version);
    uint64_t expected_bad = 0;
    auto spoil_and_deliver = [&](auto spoil) {
        auto bytes = f.good_answer();
        spoil(bytes);
        f.script.deliver(f.script.last().transaction_id, bytes);
        CHECK(f.service.counters().bad_answers == ++expected_bad);
        CHECK(f.service.beats() == 0);
        f.script.advance(HeartbeatService::kPeriod);  // the next beat goes out
    };
    spoil_and_deliver([&](auto& bytes) { bytes[id_at] ^= 0x01; });
    spoil_and_deliver([&](auto& bytes) { poke<uint16_t>(bytes, type_at, uint16_t{3}); });
    spoil_and_deliver([&](auto& bytes) { bytes[flags_at] = wire::kFlagResponse; });  // no transaction flag
    spoil_and_deliver([&](auto& bytes) { poke(bytes, version_at, wire::Version{1, 0}); });
    spoil_and_deliver([&](auto& bytes) { poke(bytes, framework_at, wire::Version{1, 0}); });
    CHECK(f.service.counters().unsolicited == 0);
}

TEST_CASE("heartbeat answers with the wrong sequence, an unknown state or a truncated body are bad answers", "[ic][hostile]") {
    Fixture f;
    f.open_and_negotiate();
    auto request = f.script.last_body<wire::HeartbeatMessage>();
    f.script.answer_last(wire::HeartbeatMessage{request.sequence, 1, 0});  // not plus one
    CHECK(f.service.counters().bad_answers == 1);
    f.script.advance(HeartbeatService::kPeriod);
    request = f.script.last_body<wire::HeartbeatMessage>();
    f.script.answer_last(wire::HeartbeatMessage{request.sequence + 1, 4, 0});  // no such application state
    CHECK(f.service.counters().bad_answers == 2);
    f.script.advance(HeartbeatService::kPeriod);
    request = f.script.last_body<wire::HeartbeatMessage>();
    f.script.answer_last(request.sequence + 1);  // 8 bytes: only the sequence
    CHECK(f.service.counters().bad_answers == 3);
    f.script.advance(HeartbeatService::kPeriod);
    f.script.deliver(f.script.last().transaction_id, f.good_answer());
    CHECK(f.service.beats() == 1);
}

TEST_CASE("answers to nothing outstanding, with another VMBus id, or late are counted and dropped", "[ic][hostile]") {
    Fixture f;
    f.open_and_negotiate();
    const auto answer = f.good_answer();
    const uint64_t id = f.script.last().transaction_id;
    f.script.deliver(id + 1, answer);  // not the outstanding request
    CHECK(f.service.counters().unsolicited == 1);
    f.script.deliver(id, answer);
    CHECK(f.service.beats() == 1);
    f.script.deliver(id, answer);  // again: nothing is outstanding now
    CHECK(f.service.counters().unsolicited == 2);
    CHECK(f.service.beats() == 1);

    f.script.advance(HeartbeatService::kPeriod);
    const auto slow = f.good_answer();
    const uint64_t slow_id = f.script.last().transaction_id;
    f.script.advance(IcService::kDefaultTimeout);
    CHECK(f.service.counters().timeouts == 1);
    f.script.deliver(slow_id, slow);
    CHECK(f.service.counters().late == 1);
    CHECK(f.service.beats() == 1);
}

TEST_CASE("packets that are not IC messages, and guest requests on a service that takes none, are counted", "[ic][hostile]") {
    Fixture f;
    f.open_and_negotiate();
    const std::vector<uint8_t> junk(16, 0xff);
    f.script.deliver(f.script.last().transaction_id, junk);
    CHECK(f.service.counters().malformed == 1);
    wire::Packet request;
    const wire::HeartbeatMessage body{1, 1, 0};
    REQUIRE(wire::build_packet(request, wire::request_header(wire::MessageType::kHeartbeat, kV3, 0), &body, sizeof body));
    f.script.deliver(0, request);
    CHECK(f.service.counters().unsolicited == 1);
    f.script.deliver(f.script.last().transaction_id, f.good_answer());  // the real request is still served
    CHECK(f.service.beats() == 1);
}

TEST_CASE("one request at a time: a beat due while one is outstanding is skipped", "[ic]") {
    Fixture f;
    f.open_and_negotiate();
    const size_t sent = f.script.sent_count();
    f.script.advance(HeartbeatService::kPeriod - 1ms);
    CHECK(f.script.sent_count() == sent);
    f.script.advance(1ms);  // the period, with the first beat still unanswered (timeout 1.5 s)
    CHECK(f.script.sent_count() == sent);
    f.script.advance(1s);  // timed out at 1.5 s; the beat at 2 s goes out
    CHECK(f.script.sent_count() == sent + 1);
}

TEST_CASE("a ring without room is a send failure: nothing is outstanding, the next period tries again", "[ic]") {
    Fixture f;
    f.open_and_negotiate();
    f.script.deliver(f.script.last().transaction_id, f.good_answer());
    f.script.transport.full = true;
    f.script.advance(HeartbeatService::kPeriod);
    CHECK(f.service.counters().send_failures == 1);
    f.script.transport.full = false;
    f.script.advance(HeartbeatService::kPeriod);
    f.script.deliver(f.script.last().transaction_id, f.good_answer());
    CHECK(f.service.beats() == 2);
}

TEST_CASE("closing the channel ends the service; packets after it are ignored", "[ic]") {
    Fixture f;
    f.open_and_negotiate();
    const auto answer = f.good_answer();
    f.service.close();
    CHECK(f.service.state() == IcService::State::kClosed);
    f.script.deliver(f.script.last().transaction_id, answer);
    CHECK(f.service.beats() == 0);
    CHECK_FALSE(f.service.next_deadline().has_value());
}
