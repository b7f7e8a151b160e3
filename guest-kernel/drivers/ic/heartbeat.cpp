// Heartbeat: the host's sequence number comes back plus one, with the application state. For tests
// of the host's side, the kernel can leave the beats after the first one unanswered for a while
// (command line heartbeat_silence=S).
#include "arch/x86_64/time.h"
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"

namespace hvkvm::guest::ic {
namespace {

constexpr wire::Version kSupported[] = {{1, 0}, {3, 0}};
ServiceState service_state{wire::kHeartbeat, wire::list_of(kSupported)};

// Set once by the main thread before the driver is registered; the device thread reads it.
struct Silence {
    uint64_t length_ns = 0;
    uint64_t until_ns = 0;  // 0: not started
} silence;

// True while the beats are to go unanswered; the silence starts after the first beat.
bool silent_now() {
    if (silence.length_ns == 0) return false;
    const uint64_t now = time::now_ns();
    if (silence.until_ns == 0) {
        silence.until_ns = now + silence.length_ns;
        return false;
    }
    return now < silence.until_ns;
}

class HeartbeatDevice final : public IcDevice {
public:
    explicit HeartbeatDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options()) {}

private:
    bool answer(const wire::Message& request, wire::Packet& response) override {
        wire::HeartbeatMessage beat;
        if (wire::read_body(request, beat) != wire::IcError::kNone || silent_now()) return false;
        beat.sequence += 1;
        beat.application_state = static_cast<uint32_t>(wire::ApplicationState::kHealthy);
        return wire::build_response(response, request.header, wire::kStatusSuccess, &beat, sizeof beat);
    }
};

vmbus::Driver driver{"ic-heartbeat", wire::kHeartbeat.interface_type, probe<HeartbeatDevice>, remove<HeartbeatDevice>, {}, false};

}  // namespace

vmbus::Driver& heartbeat_driver() { return driver; }
void set_heartbeat_silence(uint64_t ns) { silence.length_ns = ns; }
ServiceState& heartbeat_state() { return service_state; }

}  // namespace hvkvm::guest::ic
