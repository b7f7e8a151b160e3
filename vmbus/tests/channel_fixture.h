// Wiring for channel state machine tests: in-memory transports, GPADL storage that counts what is
// outstanding, a device that records what it was asked, and client events that record what came.
#pragma once

#include <catch2/catch.hpp>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "vmbus/channel/channel_client.h"
#include "vmbus/channel/channel_server.h"

namespace hvkvm::vmbus::test {

struct HostWire final : channel::ServerTransport {
    void send(const protocol::MessageBuffer& message) override { to_guest.push_back(message); }
    std::deque<protocol::MessageBuffer> to_guest;
};

struct GuestWire final : channel::ClientTransport {
    void send(uint32_t connection_id, const protocol::MessageBuffer& message) override {
        to_host.push_back(message);
        connection_ids.push_back(connection_id);
    }
    std::deque<protocol::MessageBuffer> to_host;
    std::vector<uint32_t> connection_ids;
};

struct CountingStorage final : channel::GpadlStorage {
    uint64_t* allocate(uint32_t words) override {
        if (refuse) return nullptr;
        auto block = std::make_unique<uint64_t[]>(words);
        uint64_t* pointer = block.get();
        blocks[pointer] = {std::move(block), words};
        return pointer;
    }
    void release(uint64_t* words, uint32_t count) override {
        auto found = blocks.find(words);
        REQUIRE(found != blocks.end());
        CHECK(found->second.second == count);
        blocks.erase(found);
    }
    size_t outstanding() const { return blocks.size(); }

    bool refuse = false;
    std::map<uint64_t*, std::pair<std::unique_ptr<uint64_t[]>, uint32_t>> blocks;
};

struct FakeDevice final : channel::ChannelDevice {
    uint32_t open(const channel::OpenRequest& request) override {
        ++opens;
        last_open = request;
        ring_pfns.assign(request.ring.pfns, request.ring.pfns + request.ring.page_count);
        return status;
    }
    void close() override { ++closes; }

    uint32_t status = protocol::kStatusSuccess;
    int opens = 0;
    int closes = 0;
    channel::OpenRequest last_open{};
    std::vector<uint64_t> ring_pfns;
};

struct RecordingEvents final : channel::ClientEvents {
    void connected(uint32_t version) override { connected_version = version; }
    void connection_failed() override { ++failures; }
    void offer(const protocol::OfferChannel& offer) override { offers.push_back(offer.child_relid); }
    void all_offers_delivered() override { ++all_delivered; }
    void gpadl_created(uint32_t gpadl, uint32_t status) override { created[gpadl] = status; }
    void gpadl_torn_down(uint32_t gpadl) override { torn_down.push_back(gpadl); }
    void open_result(uint32_t relid, uint32_t status) override { opened[relid] = status; }
    void rescinded(uint32_t relid) override { rescinds.push_back(relid); }
    void unloaded() override { ++unloads; }

    uint32_t connected_version = 0;
    int failures = 0;
    std::vector<uint32_t> offers;
    int all_delivered = 0;
    std::map<uint32_t, uint32_t> created;
    std::vector<uint32_t> torn_down;
    std::map<uint32_t, uint32_t> opened;
    std::vector<uint32_t> rescinds;
    int unloads = 0;
};

// Delivers messages both ways until neither side has anything to say; every one must be accepted.
inline void pump(channel::ChannelServer& server, channel::ChannelClient& client, HostWire& host_wire, GuestWire& guest_wire) {
    while (!host_wire.to_guest.empty() || !guest_wire.to_host.empty()) {
        while (!guest_wire.to_host.empty()) {
            const protocol::MessageBuffer message = guest_wire.to_host.front();
            guest_wire.to_host.pop_front();
            REQUIRE(channel::server_error_name(server.handle_message(message.bytes, message.size)) == std::string("none"));
        }
        while (!host_wire.to_guest.empty()) {
            const protocol::MessageBuffer message = host_wire.to_guest.front();
            host_wire.to_guest.pop_front();
            REQUIRE(channel::client_error_name(client.handle_message(message.bytes, message.size)) == std::string("none"));
        }
    }
}

// One page-aligned range of `pages` pages at PFN 0x5000.
inline std::vector<uint64_t> ring_range(uint32_t pages, uint64_t first_pfn = 0x5000) {
    std::vector<uint64_t> words(1 + pages);
    const GpaRangeHeader header{pages * kHvPageSize, 0};
    std::memcpy(words.data(), &header, sizeof(header));
    for (uint32_t i = 0; i < pages; ++i) words[1 + i] = first_pfn + i;
    return words;
}

inline GpaRangeList as_list(const std::vector<uint64_t>& words, uint32_t range_count = 1) {
    return GpaRangeList{words.data(), static_cast<uint32_t>(words.size()), range_count};
}

inline channel::OfferInfo offer_info(uint32_t instance) {
    channel::OfferInfo info;
    info.interface_type = protocol::Guid{0xba6163d9, 0x04a1, 0x4d29, {0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f}};
    info.interface_instance.data1 = instance;
    info.flags = protocol::kOfferEnumerateDeviceInterface;
    return info;
}

}  // namespace hvkvm::vmbus::test
