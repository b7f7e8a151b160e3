// An integration service as a VSP: the channel's rings and signals (vsp.h) on one side, the
// service's state machine (ic_service.h) on the other. Every packet the guest sends is copied
// once into a private buffer before the service parses it; packets that are not in-band or
// larger than any IC message are dropped and counted. The service's deadlines (timeouts,
// periodic requests) run on an event-loop timer.
#pragma once

#include <memory>
#include <vector>

#include "event_loop.h"
#include "services/ic/ic_service.h"
#include "vsp.h"

namespace hvkvm::root {

class IcVsp final : public Vsp, private ic::IcTransport {
public:
    IcVsp(VspServices& services, std::unique_ptr<ic::IcService> service);
    ~IcVsp() override;

    const char* name() const override { return service_->name(); }
    vmbus::channel::OfferInfo offer() const override;
    bool control(const nlohmann::json& request, ControlReply& reply) override;
    nlohmann::json describe() const override;

    ic::IcService& service() { return *service_; }
    uint64_t dropped_packets() const { return dropped_packets_; }

private:
    bool on_open(const vmbus::channel::OpenRequest& request) override;
    void on_close() override;
    void on_guest_signal() override;
    bool send(uint64_t transaction_id, const ic::wire::Packet& packet) override;

    // Handles what is in the incoming ring now; false if the ring is corrupt.
    bool drain();
    // Arms the timer for the service's next deadline.
    void schedule();

    std::unique_ptr<ic::IcService> service_;
    EventLoop::Timer timer_;
    std::vector<uint8_t> payload_;  // the private copy of one packet
    uint64_t dropped_packets_ = 0;  // not in-band, or larger than any IC message
};

}  // namespace hvkvm::root
