// The kernel's VMBus: one connection to the root partition through the hypervisor
// (HypervisorLink), with the built-in VSC drivers registered on it.
#pragma once

#include "drivers/vmbus/bus.h"

namespace hvkvm::guest::vmbus {

// Main thread, once the kernel is up: connects if the host offers VMBus and registers the
// built-in drivers (which probe the offers they serve). kNoHost means the host has no VMBus: the
// kernel runs without it.
BusError start();
// Before the kernel exits: removes every device and unloads (UNLOAD, UNLOAD_RESPONSE).
void stop();
// The connected bus, or nullptr.
Bus* bus();

}  // namespace hvkvm::guest::vmbus
