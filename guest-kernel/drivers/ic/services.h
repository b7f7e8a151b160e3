// The integration services' VSC drivers (one per service; ic.cpp registers them) and the hooks
// between them and ic.cpp. Internal to drivers/ic.
#pragma once

#include "drivers/ic/ic.h"
#include "drivers/vmbus/driver_model.h"

namespace hvkvm::guest::ic {

vmbus::Driver& heartbeat_driver();
vmbus::Driver& shutdown_driver();
vmbus::Driver& timesync_driver();
vmbus::Driver& kvp_driver();
vmbus::Driver& guest_log_driver();

void set_shutdown_policy(ShutdownPolicy policy);
// After the first beat, leave heartbeats unanswered for `ns` (tests of the host's lost/resumed).
void set_heartbeat_silence(uint64_t ns);
// Every console line, when the kernel mirrors its console to the host.
void mirror_console_line(const char* text, size_t size);

}  // namespace hvkvm::guest::ic
