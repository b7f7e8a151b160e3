// Monotonic time from the TSC, whose frequency the VMM reports in boot info. The TSC is invariant
// and synchronised across vCPUs under KVM, so now_ns() is comparable between CPUs.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::time {

void init(uint64_t tsc_khz);

uint64_t tsc_khz();
uint64_t now_ns();                        // since init()
uint64_t tsc_to_ns(uint64_t tsc_delta);
uint64_t ns_to_tsc(uint64_t ns);
uint64_t ns_to_tsc_absolute(uint64_t now_ns_value);  // the TSC value at that now_ns() time

// Busy-waits (pause) for at least `ns`; for short waits where sleeping costs more than it saves.
void spin_for_ns(uint64_t ns);

}  // namespace hvkvm::guest::time
