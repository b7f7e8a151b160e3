// SynIC echo (abi/synic.h, config debug.synic_echo): a test device that answers a guest's
// HvPostMessage through the SynIC, so that in-guest tests can exercise message slots, EOM
// queueing and event flags end to end before any VMBus channel exists.
#include <atomic>
#include <cstring>
#include <fmt/format.h>
#include <memory>

#include "config/config.h"
#include "device.h"
#include "hvkvm/abi/synic.h"
#include "hypercalls/hypervisor.h"
#include "synic/synic.h"

namespace hvkvm::devices {
namespace {

using namespace abi::synic;
using abi::hv::Status;

class SynicEcho final : public Device {
public:
    explicit SynicEcho(DeviceContext& context) : synic_(context.synic) {
        context.hypervisor.add_message_connection(
            kEchoConnectionId, [this](uint32_t type, std::span<const uint8_t> payload) { return answer(type, payload); });
    }

    std::string_view name() const override { return "synic-echo"; }
    std::string report() const override {
        return fmt::format("{} requests answered, {} refused", answered_.load(), refused_.load());
    }

private:
    // Runs on the posting vCPU's thread; posting and signalling never block.
    Status answer(uint32_t type, std::span<const uint8_t> payload) {
        EchoRequest request{};
        if (type != kEchoMessageType || payload.size() != sizeof request) return refuse(Status::kInvalidParameter);
        std::memcpy(&request, payload.data(), sizeof request);  // copy once, then validate the copy
        switch (request.kind) {
        case EchoKind::kEventFlag:
            if (!synic_.signal_event(request.target_vp, request.sint, request.flag)) return refuse(Status::kInvalidParameter);
            break;
        case EchoKind::kMessage:
            if (request.repeat == 0 || request.repeat > kMessagePayloadMax) return refuse(Status::kInvalidParameter);
            for (uint32_t i = 0; i < request.repeat; ++i) {
                request.data[0] = static_cast<uint8_t>(i);
                const auto result = synic_.post_message(request.target_vp, request.sint, kEchoMessageType,
                                                        {reinterpret_cast<const uint8_t*>(&request), sizeof request});
                if (result == vmm::Synic::PostResult::kQueueFull) return refuse(Status::kInsufficientBuffers);
                if (result != vmm::Synic::PostResult::kDelivered && result != vmm::Synic::PostResult::kQueued)
                    return refuse(Status::kInvalidParameter);
            }
            break;
        default: return refuse(Status::kInvalidParameter);
        }
        answered_.fetch_add(1, std::memory_order_relaxed);
        return Status::kSuccess;
    }

    Status refuse(Status status) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return status;
    }

    vmm::Synic& synic_;
    std::atomic<uint64_t> answered_{0}, refused_{0};
};

}  // namespace

extern const DeviceType kSynicEchoDevice{
    "synic-echo", [](const vmm::VmConfig& config) { return config.debug.synic_echo; },
    [](DeviceContext& context) -> std::unique_ptr<Device> { return std::make_unique<SynicEcho>(context); }};

}  // namespace hvkvm::devices
