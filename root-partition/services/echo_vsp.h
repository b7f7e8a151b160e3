// The echo VSP (vmbus/services/echo.h): answers every in-band packet that asks for completion with
// a completion packet carrying its transaction id and payload. It drains everything available,
// publishes the answers together and signals the guest at most once per batch, with the guest's
// signals masked while it drains, so a busy channel costs no interrupt per packet.
#pragma once

#include <vector>

#include "vmbus/services/echo.h"
#include "vsp.h"

namespace hvkvm::root {

class EchoVsp final : public Vsp {
public:
    explicit EchoVsp(VspServices& services) : Vsp(services), payload_(vmbus::services::echo::kMaxPayload) {}

    const char* name() const override { return "echo"; }
    vmbus::channel::OfferInfo offer() const override;

    uint64_t echoed() const { return echoed_; }

private:
    enum class Progress { kDrained, kBlocked, kFailed };
    void on_guest_signal() override;
    Progress echo_available();

    std::vector<uint8_t> payload_;
    uint64_t echoed_ = 0;
};

}  // namespace hvkvm::root
