// CPU features the kernel relies on, read once from CPUID on the boot CPU before it converts to
// PVM mode: after conversion, CPUID returns the physical CPU's values instead of the VMM's table.
#pragma once

#include <stdint.h>

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest::x86 {

struct CpuFeatures {
    bool x2apic;
    bool tsc_deadline;
    bool hypervisor;
    uint32_t max_hypervisor_leaf;
    char hypervisor_signature[13];
    // The hypervisor leaves 0x40000000..0x40000005 as read (zero where absent).
    CpuidResult hypervisor_leaves[6];
};

// Called once, on the boot CPU, early (before convert_to_pvm).
void read_cpu_features();
const CpuFeatures& cpu_features();

}  // namespace hvkvm::guest::x86
