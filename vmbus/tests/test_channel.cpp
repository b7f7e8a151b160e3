// The channel server and client against each other: the whole life of a channel, version
// negotiation, rescind and relid reuse, hot-added offers, unload and reconnect.
#include <catch2/catch.hpp>

#include "vmbus/tests/channel_fixture.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::channel;
using namespace hvkvm::vmbus::protocol;
using namespace hvkvm::vmbus::test;

namespace {

struct Bus {
    explicit Bus(ClientConfig client_config = {}) : server(host_wire, storage), client(guest_wire, events, client_config) {}

    void pump() { test::pump(server, client, host_wire, guest_wire); }

    uint32_t add_device(FakeDevice& device, uint32_t instance) {
        OfferId id = 0;
        REQUIRE(server.add_offer(offer_info(instance), device, id) == ServerError::kNone);
        return id;
    }

    void connect() {
        REQUIRE(client.connect() == ClientError::kNone);
        pump();
        REQUIRE(client.offers_complete());
    }

    uint32_t create_gpadl(uint32_t relid, const std::vector<uint64_t>& words) {
        uint32_t gpadl = 0;
        REQUIRE(client.create_gpadl(relid, as_list(words), gpadl) == ClientError::kNone);
        pump();
        REQUIRE(events.created.at(gpadl) == kStatusSuccess);
        return gpadl;
    }

    HostWire host_wire;
    GuestWire guest_wire;
    CountingStorage storage;
    RecordingEvents events;
    ChannelServer server;
    ChannelClient client;
};

}  // namespace

TEST_CASE("channel: a guest connects, opens a channel on a ring GPADL, closes it and unloads", "[vmbus][channel]") {
    Bus bus;
    FakeDevice scsi, net;
    const OfferId scsi_id = bus.add_device(scsi, 1);
    const OfferId net_id = bus.add_device(net, 2);
    bus.connect();
    CHECK(bus.events.connected_version == kVersionWin10_5_3);
    CHECK(bus.server.version() == kVersionWin10_5_3);
    // INITIATE_CONTACT went to connection 4, later messages where VERSION_RESPONSE said.
    CHECK(bus.guest_wire.connection_ids.front() == kMessageConnectionId4);
    CHECK(bus.guest_wire.connection_ids.back() == kMessageConnectionId);
    CHECK(bus.events.offers == std::vector<uint32_t>{1, 2});
    CHECK(bus.events.all_delivered == 1);
    const uint32_t relid = bus.server.relid_of(scsi_id);
    REQUIRE(relid == 1);
    CHECK(bus.server.relid_of(net_id) == 2);
    const OfferChannel* offer = bus.client.offer(relid);
    REQUIRE(offer != nullptr);
    CHECK(offer->interface_instance.data1 == 1);
    CHECK(offer->connection_id == (2u << 12) + 1);
    CHECK(offer->interrupt_flags == kDedicatedInterrupt);
    CHECK(offer->monitor_id == kNoMonitorId);

    // A 40-page ring GPADL: header + one body. Guest -> host ring in pages [0, 20).
    const auto words = ring_range(40);
    const uint32_t gpadl = bus.create_gpadl(relid, words);
    CHECK(gpadl == kFirstGpadlId);
    CHECK(bus.server.gpadl_count() == 1);
    uint8_t user_data[kUserDefinedBytes] = {0x42};
    REQUIRE(bus.client.open(relid, gpadl, 20, 1, user_data) == ClientError::kNone);
    bus.pump();
    CHECK(bus.events.opened.at(relid) == kStatusSuccess);
    CHECK(bus.client.is_open(relid));
    CHECK(bus.server.is_open(scsi_id));
    REQUIRE(scsi.opens == 1);
    CHECK(scsi.last_open.target_vp == 1);
    CHECK(scsi.last_open.user_data[0] == 0x42);
    CHECK(scsi.last_open.ring.gpadl == gpadl);
    CHECK(scsi.last_open.ring.page_count == 40);
    CHECK(scsi.last_open.ring.downstream_page_offset == 20);
    CHECK(scsi.ring_pfns == std::vector<uint64_t>(words.begin() + 1, words.end()));

    REQUIRE(bus.client.close(relid) == ClientError::kNone);
    bus.pump();
    CHECK(scsi.closes == 1);
    CHECK_FALSE(bus.server.is_open(scsi_id));
    REQUIRE(bus.client.teardown_gpadl(gpadl) == ClientError::kNone);
    bus.pump();
    CHECK(bus.events.torn_down == std::vector<uint32_t>{gpadl});
    CHECK(bus.server.gpadl_count() == 0);
    CHECK(bus.storage.outstanding() == 0);

    REQUIRE(bus.client.unload() == ClientError::kNone);
    bus.pump();
    CHECK(bus.events.unloads == 1);
    CHECK_FALSE(bus.server.is_connected());
    CHECK_FALSE(bus.client.is_connected());
    CHECK(bus.server.counters().refused == 0);
}

TEST_CASE("channel: unload closes open channels and frees GPADLs; a reconnect offers them again", "[vmbus][channel]") {
    Bus bus;
    FakeDevice device;
    const OfferId id = bus.add_device(device, 1);
    bus.connect();
    const uint32_t gpadl = bus.create_gpadl(1, ring_range(8));
    REQUIRE(bus.client.open(1, gpadl, 4, 0) == ClientError::kNone);
    bus.pump();
    bus.create_gpadl(1, ring_range(3));  // a second GPADL, not used by the ring
    REQUIRE(bus.client.unload() == ClientError::kNone);
    bus.pump();
    CHECK(device.closes == 1);
    CHECK(bus.storage.outstanding() == 0);
    CHECK(bus.server.relid_of(id) == 0);
    bus.connect();
    CHECK(bus.server.relid_of(id) == 1);
    CHECK(bus.events.offers == std::vector<uint32_t>{1, 1});
}

TEST_CASE("channel: the guest falls back one version at a time until the host accepts", "[vmbus][channel]") {
    GuestWire wire;
    RecordingEvents events;
    ChannelClient client(wire, events);
    REQUIRE(client.connect() == ClientError::kNone);
    std::vector<uint32_t> requested;
    // A host that only knows 4.0 and older (as Windows Server 2016 would).
    for (int round = 0; round < 8 && !wire.to_host.empty(); ++round) {
        GuestMessage message;
        const MessageBuffer sent = wire.to_host.front();
        wire.to_host.pop_front();
        REQUIRE(parse_guest_message(sent.bytes, sent.size, message) == ParseError::kNone);
        if (message.type != MessageType::kInitiateContact) break;
        requested.push_back(message.initiate_contact.version_requested);
        const bool accept = message.initiate_contact.version_requested <= kVersionWin10;
        const MessageBuffer reply = encode(VersionResponse{{}, accept, kConnectionSuccessful, 0, 0});
        REQUIRE(client.handle_message(reply.bytes, reply.size) == ClientError::kNone);
    }
    CHECK(requested == std::vector<uint32_t>{kVersionWin10_5_3, kVersionWin10_5_2, kVersionWin10_5_1,
                                             kVersionWin10_5_0, kVersionWin10_4_1, kVersionWin10});
    CHECK(client.version() == kVersionWin10);
    CHECK(client.connection_id() == kMessageConnectionId);  // pre-5.0: always 1
    CHECK(wire.connection_ids[0] == kMessageConnectionId4);
    CHECK(wire.connection_ids[5] == kMessageConnectionId);
}

TEST_CASE("channel: a guest whose every version is refused reports failure", "[vmbus][channel]") {
    GuestWire wire;
    RecordingEvents events;
    ClientConfig config;
    config.max_version = kVersionWin8_1;
    ChannelClient client(wire, events, config);
    REQUIRE(client.connect() == ClientError::kNone);
    const MessageBuffer refusal = encode(VersionResponse{{}, 0, kConnectionSuccessful, 0, 0});
    CHECK(client.handle_message(refusal.bytes, refusal.size) == ClientError::kNone);  // 3.0 refused -> 2.4
    CHECK(client.handle_message(refusal.bytes, refusal.size) == ClientError::kNone);  // 2.4 refused
    CHECK(events.failures == 1);
    CHECK_FALSE(client.is_connected());
    CHECK(client.handle_message(refusal.bytes, refusal.size) == ClientError::kUnexpected);
    CHECK(wire.to_host.size() == 2);
}

TEST_CASE("channel: an older guest negotiates its version and gets it echoed", "[vmbus][channel]") {
    ClientConfig config;
    config.max_version = kVersionWin8_1;
    Bus bus(config);
    bus.connect();
    CHECK(bus.server.version() == kVersionWin8_1);
    CHECK(bus.client.connection_id() == kMessageConnectionId);
}

TEST_CASE("channel: a rescinded channel is closed, released by the guest, and its relid reused", "[vmbus][channel]") {
    Bus bus;
    FakeDevice first, second, third;
    const OfferId first_id = bus.add_device(first, 1);
    bus.connect();
    const uint32_t gpadl = bus.create_gpadl(1, ring_range(4));
    REQUIRE(bus.client.open(1, gpadl, 2, 0) == ClientError::kNone);
    bus.pump();

    REQUIRE(bus.server.rescind(first_id) == ServerError::kNone);
    CHECK(first.closes == 1);
    bus.pump();
    CHECK(bus.events.rescinds == std::vector<uint32_t>{1});
    CHECK(bus.client.is_rescinded(1));
    // While the guest holds relid 1, a new device gets relid 2.
    bus.add_device(second, 2);
    bus.pump();
    CHECK(bus.events.offers == std::vector<uint32_t>{1, 2});

    REQUIRE(bus.client.release(1) == ClientError::kNone);
    bus.pump();
    CHECK(bus.storage.outstanding() == 0);  // the rescinded channel's GPADL went with it
    CHECK(bus.server.relid_of(first_id) == 0);
    const OfferId third_id = bus.add_device(third, 3);
    bus.pump();
    CHECK(bus.server.relid_of(third_id) == 1);
    CHECK(bus.client.offer(1)->interface_instance.data1 == 3);
}

TEST_CASE("channel: an offer rescinded before the guest saw it just disappears", "[vmbus][channel]") {
    Bus bus;
    FakeDevice device;
    const OfferId id = bus.add_device(device, 1);
    REQUIRE(bus.server.rescind(id) == ServerError::kNone);
    CHECK(bus.server.rescind(id) == ServerError::kUnknownOffer);
    bus.connect();
    CHECK(bus.events.offers.empty());
    CHECK(bus.server.rescind(kMaxOffers) == ServerError::kUnknownOffer);
}

TEST_CASE("channel: a device that refuses to open leaves the channel closed", "[vmbus][channel]") {
    Bus bus;
    FakeDevice device;
    device.status = kStatusUnsuccessful;
    const OfferId id = bus.add_device(device, 1);
    bus.connect();
    const uint32_t gpadl = bus.create_gpadl(1, ring_range(4));
    REQUIRE(bus.client.open(1, gpadl, 2, 0) == ClientError::kNone);
    bus.pump();
    CHECK(bus.events.opened.at(1) == kStatusUnsuccessful);
    CHECK_FALSE(bus.server.is_open(id));
    CHECK_FALSE(bus.client.is_open(1));
    device.status = kStatusSuccess;
    REQUIRE(bus.client.open(1, gpadl, 2, 0) == ClientError::kNone);  // may retry
    bus.pump();
    CHECK(bus.client.is_open(1));
}

TEST_CASE("channel: a 1 MiB ring GPADL travels in ten messages", "[vmbus][channel]") {
    Bus bus;
    FakeDevice device;
    bus.add_device(device, 1);
    bus.connect();
    const size_t before = bus.guest_wire.to_host.size();
    uint32_t gpadl = 0;
    REQUIRE(bus.client.create_gpadl(1, as_list(ring_range(256)), gpadl) == ClientError::kNone);
    CHECK(bus.guest_wire.to_host.size() - before == 1 + 9);  // 26 PFNs, then 28 per body
    bus.pump();
    REQUIRE(bus.client.open(1, gpadl, 128, 0) == ClientError::kNone);
    bus.pump();
    CHECK(device.ring_pfns.size() == 256);
    CHECK(device.ring_pfns.back() == 0x5000 + 255);
}
