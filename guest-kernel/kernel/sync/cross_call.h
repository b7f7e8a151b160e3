// The online CPUs, and running a function on other CPUs (inter-processor interrupts): what spin
// locks (kicking halted waiters) and TLB shootdown need, below the scheduler. Bringing CPUs up is
// kernel/smp's.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::smp {

// Called by each CPU at the end of its own bring-up.
void mark_this_cpu_online();
uint64_t online_mask();
uint32_t online_count();
// The vCPUs the VMM configured (boot info), online or not yet.
void set_configured_cpu_count(uint32_t count);
uint32_t configured_cpu_count();

using CpuFunction = void (*)(void* argument);

// Runs `function(argument)` on `cpu` (directly, if that is this CPU) and waits for it. May be
// called with interrupts disabled: while waiting, this CPU keeps serving calls aimed at it.
void run_on_cpu(uint32_t cpu, CpuFunction function, void* argument);
// Runs it on every other online CPU and waits for all of them.
void run_on_other_cpus(CpuFunction function, void* argument);

// Runs the calls queued for this CPU: the kernel calls it from the kCallFunctionVector IPI.
void serve_cross_calls();

struct IpiStats {
    uint64_t calls_sent;
    uint64_t calls_served;
};
IpiStats ipi_stats(uint32_t cpu);

}  // namespace hvkvm::guest::smp
