// The kernel's integration services (drivers/ic): the VSC drivers of heartbeat, shutdown, time
// sync, KVP and the guest log, on the kernel's VMBus connection, and what the rest of the kernel
// uses of them.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "drivers/ic/ic_device.h"
#include "drivers/vmbus/bus.h"

namespace hvkvm::guest::ic {

enum class ShutdownPolicy : uint8_t {
    kObey,    // an accepted request wakes wait_for_shutdown()
    kIgnore,  // accept it but carry on (command line shutdown=ignore: tests of the VMM's deadline)
};

struct IcOptions {
    ShutdownPolicy shutdown = ShutdownPolicy::kObey;
    bool mirror_console = false;  // command line guest_log=console: every console line to the host
    uint64_t heartbeat_silence_ns = 0;  // heartbeat_silence=S: after the first beat, S s unanswered
    uint64_t settle_ns = 2'000'000'000;  // how long start() waits for negotiations and a first beat
};

// Registers the drivers on `bus` (probing opens the channels the host offers), then waits up to
// settle_ns for each bound service to negotiate and for the first heartbeat, and prints one line
// saying what is up.
void start(vmbus::Bus& bus, const IcOptions& options);
// Unregisters the drivers (their channels close).
void stop();
bool is_started();

// --- shutdown ---

// Blocks until the host asks for a shutdown that this kernel obeys; its reason and deadline.
struct ShutdownRequest {
    uint32_t reason;
    uint32_t timeout_seconds;
};
ShutdownRequest wait_for_shutdown();

// --- KVP ---

// Copies the value of `key` in `pool` (external: the host's pairs; guest: published by the
// kernel; auto: what the kernel reports about itself) as a NUL-terminated string; false if
// there is none or it does not fit `capacity`.
bool kvp_get(wire::KvpPool pool, const char* key, char* value, size_t capacity);
// Publishes a pair in the guest pool (replacing one with the same key). False if the pool is
// full (64 pairs) or the key or value is too long for the wire.
bool kvp_publish(const char* key, const char* value);
uint32_t kvp_count(wire::KvpPool pool);

// --- guest log ---

// Queues one line for the host (interrupt context too). A line longer than the wire allows is
// cut; when the queue is full the line is dropped, and the count travels with the next line sent.
void guest_log(wire::GuestLogLevel level, const char* text, size_t size);
__attribute__((format(printf, 1, 2))) void guest_log_printf(const char* format, ...);
struct GuestLogStats {
    uint64_t queued, sent, dropped;
};
GuestLogStats guest_log_stats();

// --- the services' states (for tests and diagnostics) ---

ServiceState& heartbeat_state();
ServiceState& shutdown_state();
ServiceState& timesync_state();
ServiceState& kvp_state();
ServiceState& guest_log_state();

struct TimeSyncStats {
    uint64_t syncs, samples, stale;  // stale: samples too old to apply
};
TimeSyncStats timesync_stats();

}  // namespace hvkvm::guest::ic
