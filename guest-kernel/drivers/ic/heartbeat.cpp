// Heartbeat: the host's sequence number comes back plus one, with the application state.
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"

namespace hvkvm::guest::ic {
namespace {

constexpr wire::Version kSupported[] = {{1, 0}, {3, 0}};
ServiceState service_state{wire::kHeartbeat, wire::list_of(kSupported)};

class HeartbeatDevice final : public IcDevice {
public:
    explicit HeartbeatDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options()) {}

private:
    bool answer(const wire::Message& request, wire::Packet& response) override {
        wire::HeartbeatMessage beat;
        if (wire::read_body(request, beat) != wire::IcError::kNone) return false;
        beat.sequence += 1;
        beat.application_state = static_cast<uint32_t>(wire::ApplicationState::kHealthy);
        return wire::build_response(response, request.header, wire::kStatusSuccess, &beat, sizeof beat);
    }
};

vmbus::Driver driver{"ic-heartbeat", wire::kHeartbeat.interface_type, probe<HeartbeatDevice>, remove<HeartbeatDevice>, {}, false};

}  // namespace

vmbus::Driver& heartbeat_driver() { return driver; }
ServiceState& heartbeat_state() { return service_state; }

}  // namespace hvkvm::guest::ic
