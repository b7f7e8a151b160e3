// Sub-channels (multi-queue): offered only while their primary is open, with the primary's
// interface type and instance; closed and rescinded when the primary closes or is rescinded;
// forgotten at unload, never offered again by themselves.
#include <catch2/catch.hpp>

#include "vmbus/tests/channel_fixture.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::channel;
using namespace hvkvm::vmbus::protocol;
using namespace hvkvm::vmbus::test;

namespace {

OfferInfo sub_channel_info(uint32_t instance, uint16_t index) {
    OfferInfo info = offer_info(instance);
    info.sub_channel_index = index;
    return info;
}

struct Bus {
    Bus() : server(host_wire, storage), client(guest_wire, events) {
        REQUIRE(server.add_offer(offer_info(7), primary, primary_id) == ServerError::kNone);
        REQUIRE(client.connect() == ClientError::kNone);
        pump();
    }

    void pump() { test::pump(server, client, host_wire, guest_wire); }

    void open(uint32_t relid, uint32_t target_vp) {
        uint32_t gpadl = 0;
        REQUIRE(client.create_gpadl(relid, as_list(rings[relid] = ring_range(4, 0x5000 + 0x10 * relid)), gpadl) ==
                ClientError::kNone);
        pump();
        REQUIRE(client.open(relid, gpadl, 2, target_vp) == ClientError::kNone);
        pump();
        REQUIRE(client.is_open(relid));
    }

    // Offers `device` as sub-channel `index` of the open primary and delivers the offer.
    OfferId offer_sub_channel(FakeDevice& device, uint16_t index) {
        OfferId id = 0;
        REQUIRE(server.add_offer(sub_channel_info(7, index), device, id) == ServerError::kNone);
        pump();
        return id;
    }

    HostWire host_wire;
    GuestWire guest_wire;
    CountingStorage storage;
    RecordingEvents events;
    ChannelServer server;
    ChannelClient client;
    FakeDevice primary;
    OfferId primary_id = 0;
    std::map<uint32_t, std::vector<uint64_t>> rings;
};

}  // namespace

TEST_CASE("sub-channels: offered at once while the primary is open, refused otherwise", "[vmbus][channel]") {
    Bus bus;
    FakeDevice sub1, sub2;
    OfferId id = 0;
    CHECK(bus.server.add_offer(sub_channel_info(7, 1), sub1, id) == ServerError::kPrimaryNotOpen);  // offered, not open
    bus.open(1, 0);
    CHECK(bus.server.add_offer(sub_channel_info(8, 1), sub1, id) == ServerError::kPrimaryNotOpen);  // another instance
    OfferInfo other_type = sub_channel_info(7, 1);
    other_type.interface_type.data1 ^= 1;
    CHECK(bus.server.add_offer(other_type, sub1, id) == ServerError::kPrimaryNotOpen);
    REQUIRE(bus.server.add_offer(sub_channel_info(7, 1), sub1, id) == ServerError::kNone);
    OfferId id2 = 0;
    REQUIRE(bus.server.add_offer(sub_channel_info(7, 2), sub2, id2) == ServerError::kNone);
    bus.pump();
    REQUIRE(bus.events.offers == std::vector<uint32_t>{1, 2, 3});
    const OfferChannel* offer = bus.client.offer(2);
    CHECK(offer->sub_channel_index == 1);
    CHECK(offer->interface_instance == bus.client.offer(1)->interface_instance);
    CHECK(offer->interface_type == bus.client.offer(1)->interface_type);
    CHECK(offer->connection_id == (2u << 12) + 2);  // a connection of its own
    CHECK(bus.client.offer(3)->sub_channel_index == 2);
    bus.open(2, 1);
    bus.open(3, 3);
    CHECK(sub1.last_open.target_vp == 1);
    CHECK(sub2.last_open.target_vp == 3);
    CHECK(bus.server.is_open(id2));
}

TEST_CASE("sub-channels: the primary's close closes and rescinds them; released, a reopen offers anew",
          "[vmbus][channel]") {
    Bus bus;
    FakeDevice sub1, sub2;
    bus.open(1, 0);
    const OfferId id1 = bus.offer_sub_channel(sub1, 1);
    bus.offer_sub_channel(sub2, 2);
    bus.open(2, 1);  // sub-channel 2 stays only offered
    REQUIRE(bus.client.close(1) == ClientError::kNone);
    bus.pump();
    CHECK(sub1.closes == 1);  // closed before the primary
    CHECK(sub2.closes == 0);  // never opened
    CHECK(bus.primary.closes == 1);
    CHECK(bus.events.rescinds == std::vector<uint32_t>{2, 3});
    CHECK_FALSE(bus.server.is_open(id1));
    // The relids stay taken until released, as any rescinded channel's.
    REQUIRE(bus.client.release(2) == ClientError::kNone);
    REQUIRE(bus.client.release(3) == ClientError::kNone);
    bus.pump();
    CHECK(bus.server.relid_of(id1) == 0);

    bus.open(1, 0);
    OfferId again = 0;
    REQUIRE(bus.server.add_offer(sub_channel_info(7, 1), sub1, again) == ServerError::kNone);  // the same device
    bus.pump();
    CHECK(bus.server.relid_of(again) == 2);
    CHECK(bus.server.counters().refused == 0);
}

TEST_CASE("sub-channels: rescinding the primary takes them along", "[vmbus][channel]") {
    Bus bus;
    FakeDevice sub;
    bus.open(1, 0);
    bus.offer_sub_channel(sub, 1);
    bus.open(2, 2);
    REQUIRE(bus.server.rescind(bus.primary_id) == ServerError::kNone);
    CHECK(sub.closes == 1);
    CHECK(bus.primary.closes == 1);
    bus.pump();
    CHECK(bus.events.rescinds == std::vector<uint32_t>{2, 1});
}

TEST_CASE("sub-channels: unload forgets them; the next connection offers only the primary", "[vmbus][channel]") {
    Bus bus;
    FakeDevice sub;
    bus.open(1, 0);
    const OfferId id = bus.offer_sub_channel(sub, 1);
    bus.open(2, 1);
    REQUIRE(bus.client.unload() == ClientError::kNone);
    bus.pump();
    CHECK(sub.closes == 1);
    CHECK(bus.primary.closes == 1);
    CHECK(bus.storage.outstanding() == 0);
    bus.events.offers.clear();
    REQUIRE(bus.client.connect() == ClientError::kNone);
    bus.pump();
    CHECK(bus.events.offers == std::vector<uint32_t>{1});
    CHECK(bus.server.relid_of(id) == 0);
}
