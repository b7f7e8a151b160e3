// The echo VSP (vmbus/services/echo.h): answers every in-band packet that asks for completion with
// a completion packet carrying its transaction id and payload. It drains everything available,
// publishes the answers together and signals the guest at most once per batch, with the guest's
// signals masked while it drains, so a busy channel costs no interrupt per packet. After a drain it
// polls its ring for a short window before unmasking (poll_window.h), so a queue-depth-1 stream
// costs the guest no signal per request either. A control request (no completion requested) to
// rescind the channel is honoured once the drain is done: the offer goes and comes back.
#pragma once

#include <chrono>
#include <vector>

#include "poll_window.h"
#include "vmbus/services/echo.h"
#include "vsp.h"

namespace hvkvm::root {

class EchoVsp final : public Vsp {
public:
    // poll_window: config vmbus.poll_window_us (0: unmask at once after each drain).
    EchoVsp(VspServices& services, std::chrono::nanoseconds poll_window)
        : Vsp(services), payload_(vmbus::services::echo::kMaxPayload), poll_(poll_window) {}
    // The base class closes the channel in its destructor, too late for on_close().
    ~EchoVsp() override { close(); }

    const char* name() const override { return "echo"; }
    vmbus::channel::OfferInfo offer() const override;
    nlohmann::json describe() const override;

    uint64_t echoed() const { return echoed_; }

private:
    enum class Progress { kDrained, kBlocked, kFailed };
    bool on_open(const vmbus::channel::OpenRequest&) override;
    void on_guest_signal() override;
    void on_close() override;
    Progress echo_available();
    // A packet without "completion requested": a control request, or ignored.
    void take_control_request(const vmbus::ring::IncomingPacket& packet);

    std::vector<uint8_t> payload_;
    PollWindow poll_;
    uint64_t echoed_ = 0;
    uint64_t control_requests_ = 0;
    bool rescind_requested_ = false;
};

}  // namespace hvkvm::root
