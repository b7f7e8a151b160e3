// Shutdown: a planned request is accepted (and, unless the command line says shutdown=ignore,
// wakes the kernel's wait_for_shutdown()); restart and hibernate are refused, this kernel can do
// neither.
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"
#include "kernel/console.h"
#include "kernel/sched/mutex.h"

namespace hvkvm::guest::ic {
namespace {

constexpr wire::Version kSupported[] = {{1, 0}, {3, 0}};
ServiceState service_state{wire::kShutdown, wire::list_of(kSupported)};

// What the device hands the kernel's waiting thread.
struct Requests {
    SpinLock lock;  // guards `last` and `policy`
    ShutdownRequest last = {};
    ShutdownPolicy policy = ShutdownPolicy::kObey;
    Event requested;
} requests;

class ShutdownDevice final : public IcDevice {
public:
    explicit ShutdownDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options()) {}

private:
    bool answer(const wire::Message& request, wire::Packet& response) override {
        wire::ShutdownMessage message;
        if (wire::read_body(request, message) != wire::IcError::kNone) return false;
        const bool possible = (message.flags & (wire::kShutdownFlagRestart | wire::kShutdownFlagHibernate)) == 0;
        if (possible) accept(message);
        else kprint("guest shutdown: the host asked for a restart or hibernation (flags %#x), which this kernel cannot do\n", message.flags);
        return wire::build_response(response, request.header, possible ? wire::kStatusSuccess : wire::kStatusFail, &message,
                                    sizeof message);
    }

    static void accept(const wire::ShutdownMessage& message) {
        ShutdownPolicy policy;
        {
            IrqSpinLockGuard guard(requests.lock);
            requests.last = {message.reason_code, message.timeout_seconds};
            policy = requests.policy;
        }
        if (policy == ShutdownPolicy::kIgnore) {
            kprint("guest shutdown: requested by the host (reason %#x), ignored (shutdown=ignore)\n", message.reason_code);
            guest_log_printf("shutdown requested by the host; ignored (shutdown=ignore)");
            return;
        }
        guest_log_printf("shutdown requested by the host (reason %#x, %u s)", message.reason_code, message.timeout_seconds);
        requests.requested.set();
    }
};

vmbus::Driver driver{"ic-shutdown", wire::kShutdown.interface_type, probe<ShutdownDevice>, remove<ShutdownDevice>, {}, false};

}  // namespace

vmbus::Driver& shutdown_driver() { return driver; }
ServiceState& shutdown_state() { return service_state; }

void set_shutdown_policy(ShutdownPolicy policy) {
    IrqSpinLockGuard guard(requests.lock);
    requests.policy = policy;
}

ShutdownRequest wait_for_shutdown() {
    requests.requested.wait();
    IrqSpinLockGuard guard(requests.lock);
    return requests.last;
}

}  // namespace hvkvm::guest::ic
