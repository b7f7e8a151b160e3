// Bringing up the secondary CPUs through the VMM (modelled on HvCallStartVirtualProcessor). The
// online set and cross-CPU calls are in kernel/sync/cross_call.h.
#pragma once

#include "hvkvm/abi/boot.h"
#include "kernel/sync/cross_call.h"

namespace hvkvm::guest::smp {

// Boot CPU, once the scheduler runs on it: asks the VMM to start every other configured vCPU and
// waits until each has come online (panics naming any that does not).
void start_secondary_cpus(const abi::BootInfo& boot_info);

// Asks the VMM to start `cpu` with a prepared request (abi::VcpuStartRequest) and returns the
// status the VMM wrote; for tests of the VMM's validation, too.
abi::VcpuStartStatus request_vcpu_start(abi::VcpuStartRequest& request);

}  // namespace hvkvm::guest::smp
