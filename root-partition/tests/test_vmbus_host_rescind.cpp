// The VMBus host's rescind-and-offer-again (vmbus_host.h, ChannelOffers): a VSP's request is
// carried out only once the event loop runs again (the rescind closes the channel whose handler
// may be asking), RESCIND_CHANNELOFFER goes to the guest and the VMM hears "rescinded"; the offer
// comes back as soon as the guest releases the relid — or unloads, then on its next connection —
// and never while the relid is still held. Against a scripted guest: channel messages in, the
// host's messages and channel reports out.
#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <cstdint>
#include <span>
#include <vector>

#include "event_loop.h"
#include "guest_signals.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm_error.h"
#include "partition_link.h"
#include "synic/synic_shared_state.h"
#include "vmbus/protocol/message_codec.h"
#include "vmbus_host.h"
#include "vsp.h"

using namespace hvkvm;
using namespace hvkvm::root;
using namespace std::chrono_literals;
namespace protocol = hvkvm::vmbus::protocol;

namespace {

// The VMM's side of the link: what the host posted to the guest and reported about channels.
class RecordingLink final : public PartitionLink {
public:
    void post_message(uint32_t, uint32_t, uint32_t, std::span<const uint8_t> payload) override {
        protocol::HostMessage message;
        REQUIRE(protocol::parse_host_message(payload.data(), static_cast<uint32_t>(payload.size()), message) ==
                protocol::ParseError::kNone);
        posted.push_back(message);
    }
    vmm::UniqueFd open_event_connection(uint32_t) override { throw vmm::HostError(ENOENT, "no channel opens here"); }
    void report_channel(uint32_t relid, link::ChannelPhase phase, uint32_t, const char*) override {
        reports.push_back({relid, phase});
    }

    size_t count(protocol::MessageType type) const {
        size_t n = 0;
        for (const auto& message : posted) n += message.type == type;
        return n;
    }
    struct Report {
        uint32_t relid;
        link::ChannelPhase phase;
    };
    std::vector<protocol::HostMessage> posted;
    std::vector<Report> reports;
};

class TestVsp final : public Vsp {
public:
    TestVsp(VspServices& services, uint8_t id) : Vsp(services), id_(id) {}
    const char* name() const override { return "test"; }
    vmbus::channel::OfferInfo offer() const override {
        vmbus::channel::OfferInfo info;
        info.interface_type = {0x12345678, 0, 0, {id_}};
        info.interface_instance = {0x9abcdef0, 0, 0, {id_}};
        return info;
    }
    void ask_for_rescind() { rescind_and_offer_again(); }

private:
    void on_guest_signal() override {}
    uint8_t id_;
};

struct Host {
    Host() {
        const uint64_t node_bytes[] = {2ull << 20};
        memory.emplace(vmm::GuestMemory::create(vmm::MemoryLayout::for_nodes(node_bytes)));
        signals.emplace(*memory, synic, std::vector<vmm::UniqueFd>{});
        services.emplace(VspServices{loop, *memory, *signals, link, 0, nullptr});
        host.emplace(*services, link);
        auto first = std::make_unique<TestVsp>(*services, 1);
        auto second = std::make_unique<TestVsp>(*services, 2);
        vsp = first.get();
        host->add(std::move(first));
        host->add(std::move(second));
    }
    template <typename Message>
    void guest_sends(Message message) {
        const protocol::MessageBuffer buffer = protocol::encode(message);
        host->on_guest_message(buffer.bytes, buffer.size);
    }
    void connect() {
        protocol::InitiateContact contact{};
        contact.version_requested = protocol::kVersionWin10_5_3;
        contact.interrupt_page = protocol::kVmbusMessageSint;
        guest_sends(contact);
        guest_sends(protocol::RequestOffers{});
    }
    // Runs the event loop until nothing is due for a while (the rescind timer is due at once).
    void run_loop() {
        EventLoop::Timer stop(loop, [this] { loop.stop(); });
        stop.arm_at(EventLoop::Clock::now() + 20ms);
        loop.run();
    }
    uint32_t relid_of_rescind() const {
        for (const auto& message : link.posted)
            if (message.type == protocol::MessageType::kRescindChannelOffer) return message.rescind_channel_offer.child_relid;
        return 0;
    }
    bool reported(uint32_t relid, link::ChannelPhase phase) const {
        for (const auto& report : link.reports)
            if (report.relid == relid && report.phase == phase) return true;
        return false;
    }

    EventLoop loop;
    RecordingLink link;
    vmm::SynicSharedState synic{};
    std::optional<vmm::GuestMemory> memory;
    std::optional<GuestSignals> signals;
    std::optional<VspServices> services;
    std::optional<VmbusHost> host;
    TestVsp* vsp = nullptr;
};

}  // namespace

TEST_CASE("vmbus host: a requested rescind waits for the event loop, then the offer returns once the relid is released",
          "[vmbus-host][rescind]") {
    Host h;
    h.connect();
    REQUIRE(h.link.count(protocol::MessageType::kOfferChannel) == 2);
    CHECK(h.reported(1, link::ChannelPhase::kOffered));

    h.vsp->ask_for_rescind();
    CHECK(h.link.count(protocol::MessageType::kRescindChannelOffer) == 0);  // not from inside the handler
    h.run_loop();
    REQUIRE(h.link.count(protocol::MessageType::kRescindChannelOffer) == 1);
    CHECK(h.relid_of_rescind() == 1);
    CHECK(h.reported(1, link::ChannelPhase::kRescinded));

    // Any other message while the guest still holds the relid: no new offer.
    h.guest_sends(protocol::RequestOffers{});  // refused (a second request), changes nothing
    CHECK(h.link.count(protocol::MessageType::kOfferChannel) == 2);

    h.link.reports.clear();
    h.guest_sends(protocol::RelIdReleased{{}, 1});
    REQUIRE(h.link.count(protocol::MessageType::kOfferChannel) == 3);
    const protocol::OfferChannel& again = h.link.posted.back().offer_channel;
    CHECK(again.child_relid == 1);  // the lowest free relid again
    CHECK(again.interface_instance.data1 == 0x9abcdef0);
    CHECK(h.reported(1, link::ChannelPhase::kOffered));
    // Once: later messages do not offer it again.
    h.guest_sends(protocol::RelIdReleased{{}, 1});
    CHECK(h.link.count(protocol::MessageType::kOfferChannel) == 3);
}

TEST_CASE("vmbus host: a rescinded offer the guest unloads instead of releasing comes back on the next connection",
          "[vmbus-host][rescind]") {
    Host h;
    h.connect();
    h.vsp->ask_for_rescind();
    h.run_loop();
    REQUIRE(h.link.count(protocol::MessageType::kRescindChannelOffer) == 1);
    h.guest_sends(protocol::Unload{});
    CHECK(h.link.count(protocol::MessageType::kOfferChannel) == 2);  // not offered to a guest that left
    h.connect();
    CHECK(h.link.count(protocol::MessageType::kOfferChannel) == 4);  // both offers, the rescinded one again
}

TEST_CASE("vmbus host: a rescind requested before the guest saw the offer removes and re-adds it quietly",
          "[vmbus-host][rescind]") {
    Host h;
    h.vsp->ask_for_rescind();
    h.run_loop();
    CHECK(h.link.count(protocol::MessageType::kRescindChannelOffer) == 0);  // the guest was never shown it
    h.connect();
    CHECK(h.link.count(protocol::MessageType::kOfferChannel) == 2);
}

TEST_CASE("vmbus host: repeated requests before the loop runs rescind once", "[vmbus-host][rescind]") {
    Host h;
    h.connect();
    h.vsp->ask_for_rescind();
    h.vsp->ask_for_rescind();
    h.run_loop();
    h.vsp->ask_for_rescind();  // while the guest still holds the relid: nothing more to do
    h.run_loop();
    CHECK(h.link.count(protocol::MessageType::kRescindChannelOffer) == 1);
}
