// The channel server against a hostile guest and the client against a hostile host: messages out
// of order or naming things that do not exist, each limit at its exact fit and one past.
#include <catch2/catch.hpp>

#include "vmbus/tests/channel_fixture.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::channel;
using namespace hvkvm::vmbus::protocol;
using namespace hvkvm::vmbus::test;

namespace {

// A server driven message by message, as a hostile guest would.
struct HostileGuest {
    HostileGuest() : server(wire, storage, config()) {}

    static ServerConfig config() {
        ServerConfig result;
        result.max_gpadl_words = 64;
        return result;
    }

    ServerError send(const MessageBuffer& message) { return server.handle_message(message.bytes, message.size); }

    template <typename Message>
    ServerError send(const Message& message) {
        return send(encode(message));
    }

    // The host's next reply, parsed.
    HostMessage reply() {
        REQUIRE_FALSE(wire.to_guest.empty());
        const MessageBuffer message = wire.to_guest.front();
        wire.to_guest.pop_front();
        HostMessage parsed;
        REQUIRE(parse_host_message(message.bytes, message.size, parsed) == ParseError::kNone);
        return parsed;
    }

    void connect(uint32_t version = kVersionWin10_5_3) {
        InitiateContact contact{};
        contact.version_requested = version;
        contact.interrupt_page = kVmbusMessageSint;
        REQUIRE(send(contact) == ServerError::kNone);
        REQUIRE(reply().version_response.version_supported == 1);
        REQUIRE(send(RequestOffers{}) == ServerError::kNone);
        while (reply().type != MessageType::kAllOffersDelivered) {
        }
    }

    // A GPADL header message with the first words of `words`.
    ServerError gpadl_header(uint32_t relid, uint32_t gpadl, const std::vector<uint64_t>& words, uint16_t ranges = 1) {
        GpadlHeader fixed{};
        fixed.child_relid = relid;
        fixed.gpadl = gpadl;
        fixed.range_buflen = static_cast<uint16_t>(words.size() * 8);
        fixed.range_count = ranges;
        const uint32_t carried = words.size() < kGpadlHeaderMaxWords ? words.size() : kGpadlHeaderMaxWords;
        return send(encode_gpadl_header(fixed, words.data(), carried));
    }

    ServerError gpadl_body(uint32_t gpadl, const uint64_t* words, uint32_t count) {
        GpadlBody fixed{};
        fixed.gpadl = gpadl;
        return send(encode_gpadl_body(fixed, words, count));
    }

    // A complete GPADL in one header message; expects GPADL_CREATED with success.
    void make_gpadl(uint32_t relid, uint32_t gpadl, uint32_t pages) {
        REQUIRE(gpadl_header(relid, gpadl, ring_range(pages)) == ServerError::kNone);
        const HostMessage created = reply();
        REQUIRE(created.type == MessageType::kGpadlCreated);
        REQUIRE(created.gpadl_created.creation_status == kStatusSuccess);
    }

    ServerError open(uint32_t relid, uint32_t gpadl, uint32_t downstream) {
        OpenChannel message{};
        message.child_relid = relid;
        message.open_id = 77;
        message.ring_buffer_gpadl = gpadl;
        message.downstream_ring_page_offset = downstream;
        return send(message);
    }

    HostWire wire;
    CountingStorage storage;
    ChannelServer server;
};

}  // namespace

TEST_CASE("channel server: nothing but INITIATE_CONTACT before a connection", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    FakeDevice device;
    OfferId id;
    REQUIRE(guest.server.add_offer(offer_info(1), device, id) == ServerError::kNone);
    CHECK(guest.send(RequestOffers{}) == ServerError::kNotConnected);
    CHECK(guest.send(CloseChannel{{}, 1}) == ServerError::kNotConnected);
    CHECK(guest.send(Unload{}) == ServerError::kNotConnected);
    CHECK(guest.wire.to_guest.empty());
    CHECK(guest.server.counters().refused == 3);
}

TEST_CASE("channel server: version negotiation refuses what it cannot serve", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    InitiateContact contact{};
    contact.interrupt_page = kVmbusMessageSint;
    for (uint32_t version : {make_version(6, 0), make_version(1, 1), make_version(0, 13), 0u, 0xffffffffu}) {
        contact.version_requested = version;
        CHECK(guest.send(contact) == ServerError::kNone);
        CHECK(guest.reply().version_response.version_supported == 0);
        CHECK_FALSE(guest.server.is_connected());
    }
    SECTION("from 5.0 the message SINT must be 2") {
        contact.version_requested = kVersionWin10_5_0;
        contact.interrupt_page = 3;
        guest.send(contact);
        CHECK(guest.reply().version_response.version_supported == 0);
        contact.version_requested = kVersionWin10_4_1;  // before 5.0 the field is an interrupt page
        contact.interrupt_page = 0x7000;
        guest.send(contact);
        const VersionResponse response = guest.reply().version_response;
        CHECK(response.version_supported == 1);
        CHECK(response.message_connection_id == kVersionWin10_4_1);
    }
    SECTION("monitor pages come both or neither") {
        contact.version_requested = kVersionWin10_5_3;
        contact.monitor_page1 = 0x1000;
        guest.send(contact);
        const VersionResponse response = guest.reply().version_response;
        CHECK(response.version_supported == 1);
        CHECK(response.connection_state == kConnectionFailedUnknownFailure);
        CHECK_FALSE(guest.server.is_connected());
        contact.monitor_page2 = 0x2000;
        guest.send(contact);
        CHECK(guest.reply().version_response.connection_state == kConnectionSuccessful);
        CHECK(guest.server.is_connected());
    }
}

TEST_CASE("channel server: offers are requested once", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    guest.connect();
    CHECK(guest.send(RequestOffers{}) == ServerError::kOffersAlreadyRequested);
    CHECK(guest.wire.to_guest.empty());
}

TEST_CASE("channel server: the offer table holds 64 devices", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    std::vector<FakeDevice> devices(kMaxOffers + 1);
    OfferId id;
    for (uint32_t i = 0; i < kMaxOffers; ++i) REQUIRE(guest.server.add_offer(offer_info(i), devices[i], id) == ServerError::kNone);
    CHECK(guest.server.add_offer(offer_info(99), devices[kMaxOffers], id) == ServerError::kTableFull);
}

TEST_CASE("channel server: GPADLs are bounded and refused with GPADL_CREATED failures", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    FakeDevice device;
    OfferId id;
    REQUIRE(guest.server.add_offer(offer_info(1), device, id) == ServerError::kNone);
    guest.connect();

    SECTION("for a relid that was never offered") {
        CHECK(guest.gpadl_header(9, 100, ring_range(2)) == ServerError::kUnknownChannel);
        const HostMessage reply = guest.reply();
        CHECK(reply.gpadl_created.gpadl == 100);
        CHECK(reply.gpadl_created.creation_status == kStatusUnsuccessful);
    }
    SECTION("reusing a GPADL id") {
        guest.make_gpadl(1, 100, 2);
        CHECK(guest.gpadl_header(1, 100, ring_range(2)) == ServerError::kDuplicateGpadl);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
        CHECK(guest.server.gpadl_count() == 1);
    }
    SECTION("the size limit: 64 words accepted, 65 refused") {
        CHECK(guest.gpadl_header(1, 100, ring_range(63)) == ServerError::kNone);  // waits for bodies
        CHECK(guest.wire.to_guest.empty());
        CHECK(guest.gpadl_header(1, 101, ring_range(64)) == ServerError::kGpadlTooLarge);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
    }
    SECTION("storage the host cannot provide") {
        guest.storage.refuse = true;
        CHECK(guest.gpadl_header(1, 100, ring_range(2)) == ServerError::kGpadlTooLarge);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
    }
    SECTION("8 GPADLs may wait for bodies, a 9th may not") {
        const auto words = ring_range(40);  // needs a body
        for (uint32_t i = 0; i < kMaxGpadlsInProgress; ++i) REQUIRE(guest.gpadl_header(1, 200 + i, words) == ServerError::kNone);
        CHECK(guest.wire.to_guest.empty());
        CHECK(guest.gpadl_header(1, 300, words) == ServerError::kTooManyGpadls);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
        // Completing one makes room.
        REQUIRE(guest.gpadl_body(200, words.data() + 27, 14) == ServerError::kNone);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusSuccess);
        CHECK(guest.gpadl_header(1, 300, words) == ServerError::kNone);
    }
    SECTION("bodies that overflow, name no GPADL, or arrive after completion") {
        const auto words = ring_range(40);
        REQUIRE(guest.gpadl_header(1, 100, words) == ServerError::kNone);
        CHECK(guest.gpadl_body(555, words.data() + 27, 14) == ServerError::kUnknownGpadl);
        CHECK(guest.wire.to_guest.empty());  // no channel to answer on
        std::vector<uint64_t> too_many(words.begin() + 27, words.end());
        too_many.push_back(0);
        CHECK(guest.gpadl_body(100, too_many.data(), 15) == ServerError::kGpadlMalformed);
        CHECK(guest.server.last_gpadl_error() == GpadlError::kOverflow);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
        CHECK(guest.storage.outstanding() == 0);
        CHECK(guest.gpadl_body(100, words.data(), 1) == ServerError::kUnknownGpadl);
        guest.make_gpadl(1, 101, 2);
        CHECK(guest.gpadl_body(101, words.data(), 1) == ServerError::kGpadlMalformed);  // complete already
    }
    SECTION("ranges that do not validate") {
        auto words = ring_range(3);
        words.pop_back();  // 3 pages announced, 2 PFNs present
        CHECK(guest.gpadl_header(1, 100, words) == ServerError::kGpadlMalformed);
        CHECK(guest.server.last_gpadl_error() == GpadlError::kBadRanges);
        CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
        CHECK(guest.storage.outstanding() == 0);
    }
}

TEST_CASE("channel server: a connection holds 256 GPADLs", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    FakeDevice device;
    OfferId id;
    REQUIRE(guest.server.add_offer(offer_info(1), device, id) == ServerError::kNone);
    guest.connect();
    for (uint32_t i = 0; i < kMaxGpadls; ++i) guest.make_gpadl(1, 1000 + i, 1);
    CHECK(guest.server.gpadl_count() == kMaxGpadls);
    CHECK(guest.gpadl_header(1, 5000, ring_range(1)) == ServerError::kTooManyGpadls);
    CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
    REQUIRE(guest.send(GpadlTeardown{{}, 1, 1000}) == ServerError::kNone);
    guest.reply();
    guest.make_gpadl(1, 5000, 1);
}

TEST_CASE("channel server: opens need a complete ring-shaped GPADL of the same channel", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    FakeDevice first, second;
    OfferId first_id, second_id;
    REQUIRE(guest.server.add_offer(offer_info(1), first, first_id) == ServerError::kNone);
    REQUIRE(guest.server.add_offer(offer_info(2), second, second_id) == ServerError::kNone);
    guest.connect();
    guest.make_gpadl(1, 100, 8);
    guest.make_gpadl(2, 200, 8);

    // The open was refused with `expected` and answered with a failed OPENCHANNEL_RESULT.
    auto check_refused = [&](ServerError actual, ServerError expected) {
        CHECK(server_error_name(actual) == std::string(server_error_name(expected)));
        const HostMessage reply = guest.reply();
        CHECK(reply.type == MessageType::kOpenChannelResult);
        CHECK(reply.open_result.open_id == 77);
        CHECK(reply.open_result.status == kStatusUnsuccessful);
        CHECK(first.opens == 0);
    };
    SECTION("unknown, or another channel's") {
        check_refused(guest.open(1, 999, 4), ServerError::kUnknownGpadl);
        check_refused(guest.open(1, 200, 4), ServerError::kUnknownGpadl);
        CHECK(guest.open(5, 100, 4) == ServerError::kUnknownChannel);
    }
    SECTION("the downstream offset leaves each ring two pages: 2 and 6 fit, 1 and 7 do not") {
        check_refused(guest.open(1, 100, 1), ServerError::kBadRingGpadl);
        check_refused(guest.open(1, 100, 7), ServerError::kBadRingGpadl);
        check_refused(guest.open(1, 100, 0xffffffff), ServerError::kBadRingGpadl);
        CHECK(guest.open(1, 100, 2) == ServerError::kNone);
        CHECK(guest.reply().open_result.status == kStatusSuccess);
        CHECK(guest.send(CloseChannel{{}, 1}) == ServerError::kNone);
        CHECK(guest.open(1, 100, 6) == ServerError::kNone);
        CHECK(guest.reply().open_result.status == kStatusSuccess);
    }
    SECTION("not page-aligned, or several ranges") {
        auto offset = ring_range(4);
        const GpaRangeHeader header{3 * kHvPageSize, 8};
        std::memcpy(offset.data(), &header, 8);
        REQUIRE(guest.gpadl_header(1, 101, offset) == ServerError::kNone);
        guest.reply();
        check_refused(guest.open(1, 101, 2), ServerError::kBadRingGpadl);
        auto two = ring_range(2);
        const auto more = ring_range(2);
        two.insert(two.end(), more.begin(), more.end());
        REQUIRE(guest.gpadl_header(1, 102, two, 2) == ServerError::kNone);
        guest.reply();
        check_refused(guest.open(1, 102, 2), ServerError::kBadRingGpadl);
    }
    SECTION("still receiving bodies") {
        REQUIRE(guest.gpadl_header(1, 103, ring_range(40)) == ServerError::kNone);
        check_refused(guest.open(1, 103, 20), ServerError::kGpadlIncomplete);
    }
    SECTION("twice") {
        REQUIRE(guest.open(1, 100, 4) == ServerError::kNone);
        guest.reply();
        CHECK(guest.open(1, 100, 4) == ServerError::kChannelAlreadyOpen);
        CHECK(guest.wire.to_guest.empty());
        CHECK(first.opens == 1);
    }
}

TEST_CASE("channel server: teardown, close and release must match the state", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    FakeDevice device;
    OfferId id;
    REQUIRE(guest.server.add_offer(offer_info(1), device, id) == ServerError::kNone);
    guest.connect();
    guest.make_gpadl(1, 100, 8);
    CHECK(guest.send(CloseChannel{{}, 1}) == ServerError::kChannelNotOpen);
    CHECK(guest.send(CloseChannel{{}, 0}) == ServerError::kUnknownChannel);
    CHECK(guest.send(RelIdReleased{{}, 1}) == ServerError::kChannelNotRescinded);
    CHECK(guest.send(GpadlTeardown{{}, 2, 100}) == ServerError::kUnknownChannel);
    CHECK(guest.send(GpadlTeardown{{}, 1, 101}) == ServerError::kUnknownGpadl);
    REQUIRE(guest.open(1, 100, 4) == ServerError::kNone);
    guest.reply();
    CHECK(guest.send(GpadlTeardown{{}, 1, 100}) == ServerError::kGpadlInUse);
    REQUIRE(guest.gpadl_header(1, 101, ring_range(40)) == ServerError::kNone);
    CHECK(guest.send(GpadlTeardown{{}, 1, 101}) == ServerError::kGpadlIncomplete);
    CHECK(guest.wire.to_guest.empty());
    CHECK(guest.send(CloseChannel{{}, 1}) == ServerError::kNone);
    CHECK(guest.send(GpadlTeardown{{}, 1, 100}) == ServerError::kNone);
    CHECK(guest.reply().gpadl_torndown.gpadl == 100);

    // After a rescind: opens are dropped, the guest's close and teardown are accepted.
    REQUIRE(guest.server.rescind(id) == ServerError::kNone);
    CHECK(guest.reply().rescind_channel_offer.child_relid == 1);
    CHECK(guest.open(1, 100, 4) == ServerError::kChannelRescinded);
    CHECK(guest.gpadl_header(1, 102, ring_range(2)) == ServerError::kChannelRescinded);
    CHECK(guest.reply().gpadl_created.creation_status == kStatusUnsuccessful);
    CHECK(guest.send(CloseChannel{{}, 1}) == ServerError::kNone);
    CHECK(guest.send(RelIdReleased{{}, 1}) == ServerError::kNone);
    CHECK(guest.send(RelIdReleased{{}, 1}) == ServerError::kUnknownChannel);
    CHECK(guest.storage.outstanding() == 0);  // the incomplete GPADL 101 went with the channel
}

TEST_CASE("channel server: junk bytes are refused and counted", "[vmbus][channel][hostile]") {
    HostileGuest guest;
    const uint8_t junk[16] = {0xff, 0xff, 0xff, 0xff};
    CHECK(guest.server.handle_message(junk, sizeof(junk)) == ServerError::kParse);
    CHECK(guest.server.last_parse_error() == ParseError::kUnknownType);
    const MessageBuffer offer = encode(OfferChannel{});
    CHECK(guest.send(offer) == ServerError::kParse);
    CHECK(guest.server.last_parse_error() == ParseError::kWrongDirection);
    CHECK(guest.server.counters().refused == 2);
    CHECK(guest.server.counters().messages == 2);
}

// --- The client against a hostile host ----------------------------------------------------------

namespace {

struct HostileHost {
    HostileHost() : client(wire, events) {}

    template <typename Message>
    ClientError send(const Message& message) {
        const MessageBuffer buffer = encode(message);
        return client.handle_message(buffer.bytes, buffer.size);
    }

    void connect() {
        REQUIRE(client.connect() == ClientError::kNone);
        REQUIRE(send(VersionResponse{{}, 1, kConnectionSuccessful, 0, kMessageConnectionId}) == ClientError::kNone);
    }

    OfferChannel offer(uint32_t relid) {
        OfferChannel message{};
        message.child_relid = relid;
        return message;
    }

    GuestWire wire;
    RecordingEvents events;
    ChannelClient client;
};

}  // namespace

TEST_CASE("channel client: connection messages out of turn are refused", "[vmbus][channel][hostile]") {
    HostileHost host;
    CHECK(host.send(VersionResponse{{}, 1, kConnectionSuccessful, 0, 1}) == ClientError::kUnexpected);
    CHECK(host.send(host.offer(1)) == ClientError::kUnexpected);
    CHECK(host.send(AllOffersDelivered{}) == ClientError::kUnexpected);
    CHECK(host.send(UnloadResponse{}) == ClientError::kUnexpected);
    CHECK(host.send(RescindChannelOffer{{}, 1}) == ClientError::kUnexpected);
    CHECK(host.client.connect() == ClientError::kNone);
    CHECK(host.client.connect() == ClientError::kBadRequest);  // already connecting
    SECTION("a 5.x response must name a connection id of 24 bits") {
        CHECK(host.send(VersionResponse{{}, 1, kConnectionSuccessful, 0, 0x1000000}) == ClientError::kUnexpected);
        CHECK(host.events.failures == 1);
        CHECK_FALSE(host.client.is_connected());
    }
    SECTION("0xffffff is the largest") {
        CHECK(host.send(VersionResponse{{}, 1, kConnectionSuccessful, 0, 0xffffff}) == ClientError::kNone);
        CHECK(host.client.connection_id() == 0xffffff);
        CHECK(host.send(VersionResponse{{}, 1, kConnectionSuccessful, 0, 1}) == ClientError::kUnexpected);
    }
    SECTION("a failed connection state") {
        CHECK(host.send(VersionResponse{{}, 1, kConnectionFailedLowResources, 0, 1}) == ClientError::kNone);
        CHECK(host.events.failures == 1);
    }
}

TEST_CASE("channel client: offers are checked for relid range, duplicates and room", "[vmbus][channel][hostile]") {
    HostileHost host;
    host.connect();
    CHECK(host.send(host.offer(0)) == ClientError::kBadRelid);
    CHECK(host.send(host.offer(kMaxRelid + 1)) == ClientError::kBadRelid);
    CHECK(host.send(host.offer(kMaxRelid)) == ClientError::kNone);
    CHECK(host.send(host.offer(kMaxRelid)) == ClientError::kDuplicateRelid);
    for (uint32_t relid = 1; relid < kClientMaxChannels; ++relid) REQUIRE(host.send(host.offer(relid)) == ClientError::kNone);
    CHECK(host.client.channel_count() == kClientMaxChannels);
    CHECK(host.send(host.offer(kClientMaxChannels)) == ClientError::kTableFull);
    CHECK(host.send(AllOffersDelivered{}) == ClientError::kNone);
    CHECK(host.send(AllOffersDelivered{}) == ClientError::kUnexpected);
}

TEST_CASE("channel client: answers must match an outstanding request", "[vmbus][channel][hostile]") {
    HostileHost host;
    host.connect();
    REQUIRE(host.send(host.offer(1)) == ClientError::kNone);
    REQUIRE(host.send(host.offer(2)) == ClientError::kNone);
    REQUIRE(host.send(AllOffersDelivered{}) == ClientError::kNone);
    CHECK(host.send(GpadlCreated{{}, 1, kFirstGpadlId, 0}) == ClientError::kUnknownGpadl);
    CHECK(host.send(GpadlTorndown{{}, kFirstGpadlId}) == ClientError::kUnknownGpadl);
    CHECK(host.send(OpenResult{{}, 1, 1, 0}) == ClientError::kUnexpected);
    CHECK(host.send(OpenResult{{}, 9, 1, 0}) == ClientError::kUnknownChannel);

    const auto words = ring_range(4);
    uint32_t gpadl = 0;
    REQUIRE(host.client.create_gpadl(1, as_list(words), gpadl) == ClientError::kNone);
    CHECK(host.send(GpadlCreated{{}, 2, gpadl, 0}) == ClientError::kUnknownGpadl);  // wrong channel
    CHECK(host.client.open(1, gpadl, 2, 0) == ClientError::kBadRequest);           // not created yet
    REQUIRE(host.send(GpadlCreated{{}, 1, gpadl, 0}) == ClientError::kNone);
    CHECK(host.send(GpadlCreated{{}, 1, gpadl, 0}) == ClientError::kUnknownGpadl);  // answered already
    CHECK(host.client.open(2, gpadl, 2, 0) == ClientError::kBadRequest);           // another channel's GPADL
    REQUIRE(host.client.open(1, gpadl, 2, 0) == ClientError::kNone);
    CHECK(host.send(OpenResult{{}, 1, 999, 0}) == ClientError::kUnexpected);  // wrong open id
    REQUIRE(host.send(OpenResult{{}, 1, 1, 0}) == ClientError::kNone);
    CHECK(host.client.is_open(1));
    CHECK(host.client.teardown_gpadl(gpadl) == ClientError::kNone);
    CHECK(host.send(GpadlTorndown{{}, gpadl + 1}) == ClientError::kUnknownGpadl);

    CHECK(host.send(RescindChannelOffer{{}, 7}) == ClientError::kUnknownChannel);
    REQUIRE(host.send(RescindChannelOffer{{}, 1}) == ClientError::kNone);
    CHECK(host.send(RescindChannelOffer{{}, 1}) == ClientError::kUnknownChannel);
    CHECK(host.client.release(2) == ClientError::kBadRequest);  // not rescinded
    CHECK(host.client.release(1) == ClientError::kNone);
    CHECK(host.client.offer(1) == nullptr);
    CHECK(host.send(UnloadResponse{}) == ClientError::kUnexpected);
    const uint8_t junk[4] = {1, 2, 3, 4};
    CHECK(host.client.handle_message(junk, sizeof(junk)) == ClientError::kParse);
    CHECK(host.client.last_parse_error() == ParseError::kShorterThanHeader);
}

TEST_CASE("channel client: requests are checked against the state", "[vmbus][channel][hostile]") {
    HostileHost host;
    const auto words = ring_range(4);
    uint32_t gpadl = 0;
    CHECK(host.client.create_gpadl(1, as_list(words), gpadl) == ClientError::kBadRequest);
    CHECK(host.client.unload() == ClientError::kBadRequest);
    host.connect();
    REQUIRE(host.send(host.offer(1)) == ClientError::kNone);
    CHECK(host.client.close(1) == ClientError::kBadRequest);
    CHECK(host.client.teardown_gpadl(123) == ClientError::kBadRequest);
    auto broken = words;
    broken.pop_back();
    CHECK(host.client.create_gpadl(1, as_list(broken), gpadl) == ClientError::kBadRanges);
    for (uint32_t i = 0; i < kClientMaxGpadls; ++i) REQUIRE(host.client.create_gpadl(1, as_list(words), gpadl) == ClientError::kNone);
    CHECK(host.client.create_gpadl(1, as_list(words), gpadl) == ClientError::kTableFull);
}
