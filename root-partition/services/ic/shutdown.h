// The shutdown service: {"command": "shutdown", "timeout_ms": N} (SIGTERM to the VMM, or `vmm ctl
// ... shutdown`) sends the guest a planned, unforced shutdown request with the VMM's deadline;
// the guest's answer says whether it accepted. Whether it then stops is the VMM's to watch.
#pragma once

#include "services/ic/ic_service.h"

namespace hvkvm::root::ic {

class ShutdownService final : public IcService {
public:
    ShutdownService() : IcService(wire::kShutdown) {}

    bool control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) override;
    nlohmann::json describe() const override;

private:
    bool on_answer(const wire::Message& answer, Clock::time_point now) override;
    void on_failed(const char* why, Clock::time_point now) override;

    ControlReply waiting_;  // the request whose answer is outstanding
    uint64_t accepted_ = 0;
    uint64_t refused_ = 0;
};

}  // namespace hvkvm::root::ic
