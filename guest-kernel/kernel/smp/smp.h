// Secondary CPUs: starting them through the VMM, the set of online CPUs, and running a function
// on other CPUs (inter-processor interrupts).
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest::smp {

// Boot CPU, once the scheduler runs on it: asks the VMM to start every other configured vCPU and
// waits until each has come online (panics naming any that does not).
void start_secondary_cpus(const abi::BootInfo& boot_info);

// Called by each CPU at the end of its own bring-up.
void mark_this_cpu_online();

uint32_t configured_cpu_count();
uint64_t online_mask();
uint32_t online_count();

using CpuFunction = void (*)(void* argument);

// Runs `function(argument)` on `cpu` (directly, if that is this CPU) and waits for it. May be
// called with interrupts disabled: while waiting, this CPU keeps serving calls aimed at it.
void run_on_cpu(uint32_t cpu, CpuFunction function, void* argument);
// Runs it on every other online CPU and waits for all of them.
void run_on_other_cpus(CpuFunction function, void* argument);

struct IpiStats {
    uint64_t calls_sent;
    uint64_t calls_served;
};
IpiStats ipi_stats(uint32_t cpu);

}  // namespace hvkvm::guest::smp
