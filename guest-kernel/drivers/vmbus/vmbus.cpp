#include "drivers/vmbus/vmbus.h"

#include <new>

#include "arch/x86_64/time.h"
#include "drivers/storvsc/storvsc.h"
#include "drivers/vmbus/echo_vsc.h"
#include "kernel/console.h"

namespace hvkvm::guest::vmbus {
namespace {

// The kernel's one connection. `bus` is created on the first start() and kept (stop() leaves it
// disconnected, start() connects it again); only the main thread and tests start and stop it.
struct KernelBus {
    HypervisorLink link;
    Bus* bus = nullptr;
} kernel;

}  // namespace

BusError start() {
    if (!kernel.bus) kernel.bus = new (std::nothrow) Bus(kernel.link);
    if (!kernel.bus) return BusError::kNoMemory;
    const BusError error = kernel.bus->start();
    if (error == BusError::kNoHost) return error;
    if (error != BusError::kNone) {
        kprint("vmbus: no connection to the root partition: %s\n", bus_error_name(error));
        return error;
    }
    kernel.bus->drivers().register_driver(echo::driver());
    kernel.bus->drivers().register_driver(storvsc::driver());
    // A controller's sub-channels are offered after its probe asked for them: its disks appear
    // once they are open.
    constexpr uint64_t kDisksReadyTimeoutNs = 10'000'000'000;
    if (!storvsc::wait_until_ready(time::now_ns() + kDisksReadyTimeoutNs))
        kprint("vmbus: storvsc controllers still setting up after 10 s\n");
    const uint32_t version = kernel.bus->version();
    kprint("vmbus: connected (protocol %u.%u), %u offer(s)\n", version >> 16, version & 0xffff,
           kernel.bus->drivers().device_count());
    return BusError::kNone;
}

void stop() {
    if (!kernel.bus || !kernel.bus->is_running()) return;
    kernel.bus->drivers().unregister_driver(storvsc::driver());
    kernel.bus->drivers().unregister_driver(echo::driver());
    kernel.bus->stop();
}

Bus* bus() { return kernel.bus && kernel.bus->is_running() ? kernel.bus : nullptr; }

}  // namespace hvkvm::guest::vmbus
