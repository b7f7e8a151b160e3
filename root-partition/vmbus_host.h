// The root partition's VMBus host: the channel server (vmbus/channel/channel_server.h) fed with
// the guest's channel messages (HvPostMessage to the VMBus message connections, relayed by the
// VMM over a socket) and answering through the VMM's SynIC (PartitionLink::post_message), with
// the VSPs behind its offers.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "event_loop.h"
#include "partition_link.h"
#include "vmbus/channel/channel_server.h"
#include "vsp.h"

namespace hvkvm::root {

class VmbusHost final : public ChannelOffers,
                        private vmbus::channel::ServerTransport,
                        private vmbus::channel::GpadlStorage {
public:
    VmbusHost(VspServices& services, PartitionLink& link);
    ~VmbusHost();

    // Offers a VSP (owned by the host from now on).
    void add(std::unique_ptr<Vsp> vsp);
    // Offers a VSP owned elsewhere (it must outlive the host).
    void add(Vsp& vsp);
    // ChannelOffers: a sub-channel of an open VSP.
    bool offer_sub_channel(Vsp& channel) override;
    // ChannelOffers: rescind a VSP's offer and offer it again once the guest released it.
    void rescind_and_offer_again(const Vsp& vsp) override;
    // A guest message posted to a VMBus message connection (its payload).
    void on_guest_message(const void* payload, uint32_t size);

    size_t offer_count() const { return vsps_.size(); }
    // Answers a management request (exactly once, now or later): "channels" itself, anything
    // else through the VSP that takes it.
    void control(const nlohmann::json& request, ControlReply reply);
    uint64_t refused_messages() const { return server_.counters().refused; }

private:
    void send(const vmbus::protocol::MessageBuffer& message) override;
    uint64_t* allocate(uint32_t words) override;
    void release(uint64_t* words, uint32_t count) override;
    void carry_out_rescinds();
    void offer_released_again();
    void report_offers();

    // One per primary VSP, in the order offered.
    struct Offer {
        vmbus::channel::OfferId id = 0;
        uint32_t reported_relid = 0;     // the relid the VMM was told is offered (0: none yet)
        bool rescind_requested = false;  // by the VSP, not done yet
        bool awaiting_release = false;   // rescinded: offered again once the guest releases the relid
    };

    PartitionLink& link_;
    vmbus::channel::ChannelServer server_;
    std::vector<std::unique_ptr<Vsp>> owned_;
    std::vector<Vsp*> vsps_;  // primaries, in offer order
    std::vector<Offer> offers_;  // one per primary
    std::vector<Vsp*> sub_channels_;  // offered at least once; closed by the server with their primary
    EventLoop::Timer rescinds_;  // runs requested rescinds after the event that asked for them
    uint64_t gpadl_words_ = 0;  // allocated for GPADLs now, bounded by the server's limits
};

}  // namespace hvkvm::root
