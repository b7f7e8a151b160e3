// A VMBus service provider: the host end of one channel. The VMBus host offers it; when the guest
// opens the channel the base class maps both rings from the GPADL's pages of guest RAM (every PFN
// checked to be RAM), obtains the eventfd of the guest's SignalEvent for the channel and watches
// it, and the VSP serves packets in on_guest_signal(). Everything runs on the event loop's thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control_reply.h"
#include "event_loop.h"
#include "guest_signals.h"
#include "kvm/guest_memory.h"
#include "partition_link.h"
#include "vmbus/channel/channel_server.h"
#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"

namespace hvkvm::root {

class Vsp;

// What a VSP may ask of the VMBus host that offers it (implemented by the VMBus host).
class ChannelOffers {
public:
    // Offers `channel` (channel.offer() names its primary and sub_channel_index) at once. False if
    // the server refuses (no open primary, offer table full). `channel` is owned by the caller and
    // must outlive the VMBus host.
    virtual bool offer_sub_channel(Vsp& channel) = 0;
    // Rescinds the VSP's offer (RESCIND_CHANNELOFFER; its channel is closed) once the event being
    // handled is done, and offers it again once the guest has released the relid.
    virtual void rescind_and_offer_again(const Vsp& vsp) = 0;

protected:
    ~ChannelOffers() = default;
};

// What a VSP's channel is served with (owned by the VMBus host, outliving every VSP).
struct VspServices {
    EventLoop& loop;
    const vmm::GuestMemory& memory;
    GuestSignals& signals;
    PartitionLink& link;
    uint32_t event_connection_id_base;
    ChannelOffers* offers = nullptr;  // the VMBus host, which sets it and the connection id base
};

// One ring as the host sees it: control page and data pages, each translated from a PFN.
class MappedRing {
public:
    // False if a PFN is not guest RAM.
    bool map(const vmm::GuestMemory& memory, const uint64_t* pfns, uint32_t page_count);
    vmbus::ring::RingMemory& memory() {
        return contiguous_ ? static_cast<vmbus::ring::RingMemory&>(*contiguous_) : *paged_;
    }

private:
    std::vector<uint8_t*> data_pages_;
    // Contiguous when the guest's pages are adjacent in its RAM (the usual case), else page by page.
    std::optional<vmbus::ring::ContiguousRingMemory> contiguous_;
    std::optional<vmbus::ring::PagedRingMemory> paged_;
};

class Vsp : public vmbus::channel::ChannelDevice {
public:
    explicit Vsp(VspServices& services) : services_(services) {}
    virtual ~Vsp();

    virtual const char* name() const = 0;
    virtual vmbus::channel::OfferInfo offer() const = 0;
    // A management request (`vmm ctl ...`, JSON `{"command": ...}`): true if this VSP takes it
    // (then it moved `reply` away and calls it exactly once, now or when the guest has answered).
    virtual bool control(const nlohmann::json&, ControlReply&) { return false; }
    // What `vmm ctl channels` shows of this VSP beyond its channel (empty: nothing).
    virtual nlohmann::json describe() const { return nlohmann::json::object(); }

    uint32_t open(const vmbus::channel::OpenRequest& request) final;
    void close() final;
    bool is_open() const { return open_; }
    uint32_t relid() const { return relid_; }
    uint32_t target_vp() const { return target_vp_; }

protected:
    // After the rings are mapped and attached; false refuses the open.
    virtual bool on_open(const vmbus::channel::OpenRequest&) { return true; }
    virtual void on_close() {}
    // The guest signalled (or the VSP asked to be called again): serve the incoming ring.
    virtual void on_guest_signal() = 0;

    vmbus::ring::RingReader& incoming() { return incoming_; }
    vmbus::ring::RingWriter& outgoing() { return outgoing_; }
    void signal_guest();
    // Open and not failed: the rings may be used.
    bool serving() const { return open_ && !failed_; }
    // The guest asked for its channel to go and come back (a test of its driver model).
    void rescind_and_offer_again() { services_.offers->rescind_and_offer_again(*this); }
    // The channel's rings broke (a corrupt index or packet from the guest): close it for good.
    void fail(const char* why);
    VspServices& services() { return services_; }

private:
    void drain_guest_eventfd();

    VspServices& services_;
    bool open_ = false;
    bool failed_ = false;
    uint32_t relid_ = 0;
    uint32_t target_vp_ = 0;
    MappedRing incoming_ring_, outgoing_ring_;
    vmbus::ring::RingReader incoming_;
    vmbus::ring::RingWriter outgoing_;
    vmm::UniqueFd guest_signal_;
};

}  // namespace hvkvm::root
