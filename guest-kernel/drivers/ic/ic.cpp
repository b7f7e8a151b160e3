#include "drivers/ic/ic.h"

#include "arch/x86_64/time.h"
#include "drivers/ic/services.h"
#include "kernel/console.h"
#include "lib/format.h"

namespace hvkvm::guest::ic {
namespace {

// The kernel's integration services: on which bus they are registered (only the main thread
// and tests start and stop them).
struct Registration {
    vmbus::Bus* bus = nullptr;
} registration;

vmbus::Driver* const kDrivers[] = {&heartbeat_driver(), &shutdown_driver(), &timesync_driver(), &kvp_driver(),
                                   &guest_log_driver()};
ServiceState* const kStates[] = {&heartbeat_state(), &shutdown_state(), &timesync_state(), &kvp_state(),
                                 &guest_log_state()};

// Waits for every offered service to negotiate and for the first heartbeat, until `deadline`.
void settle(vmbus::Bus& bus, uint64_t deadline) {
    for (ServiceState* state : kStates)
        if (bus.drivers().is_bound(state->service.instance)) state->wait_negotiated(deadline);
    while (heartbeat_state().is_negotiated() && heartbeat_state().stats().requests == 0 && time::now_ns() < deadline)
        sched::sleep_ns(1'000'000);
}

// "ic: heartbeat 3.0, shutdown 3.0, timesync 4.0, kvp 5.0, guest-log 1.0; first heartbeat answered"
void print_summary() {
    char line[256];
    size_t length = format(line, sizeof line, "ic:");
    for (ServiceState* state : kStates) {
        if (length >= sizeof line) break;
        const wire::Versions versions = state->versions();
        length += state->is_negotiated()
                      ? format(line + length, sizeof line - length, " %s %u.%u,", state->service.name, versions.message.major,
                               versions.message.minor)
                      : format(line + length, sizeof line - length, " %s (not negotiated),", state->service.name);
    }
    if (length < sizeof line && length > 0) line[length - 1] = '\0';
    const char* heartbeat = heartbeat_state().stats().requests ? "; first heartbeat answered" : "; no heartbeat yet";
    kprint("%s%s\n", line, heartbeat);
    guest_log_printf("integration services up (%s%s)", line + 4, heartbeat);
}

}  // namespace

void start(vmbus::Bus& bus, const IcOptions& options) {
    if (registration.bus) return;
    set_shutdown_policy(options.shutdown);
    set_heartbeat_silence(options.heartbeat_silence_ns);
    if (options.mirror_console) console_set_line_observer(mirror_console_line);
    for (vmbus::Driver* driver : kDrivers) bus.drivers().register_driver(*driver);
    registration.bus = &bus;
    settle(bus, time::now_ns() + options.settle_ns);
    print_summary();
}

void stop() {
    if (!registration.bus) return;
    console_set_line_observer(nullptr);
    for (vmbus::Driver* driver : kDrivers) registration.bus->drivers().unregister_driver(*driver);
    registration.bus = nullptr;
}

bool is_started() { return registration.bus != nullptr; }

}  // namespace hvkvm::guest::ic
