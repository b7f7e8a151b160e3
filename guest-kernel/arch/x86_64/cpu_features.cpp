#include "arch/x86_64/cpu_features.h"

#include "arch/x86_64/cpu.h"

namespace hvkvm::guest::x86 {
namespace {

CpuFeatures features;  // written once by the boot CPU, read-only afterwards

}  // namespace

void read_cpu_features() {
    const CpuidResult leaf1 = cpuid(1);
    features.x2apic = leaf1.ecx & (1u << 21);
    features.tsc_deadline = leaf1.ecx & (1u << 24);
    features.hypervisor = leaf1.ecx & (1u << 31);
    if (features.hypervisor) {
        const CpuidResult base = cpuid(0x40000000);
        features.max_hypervisor_leaf = base.eax;
        const uint32_t words[3] = {base.ebx, base.ecx, base.edx};
        for (int i = 0; i < 12; ++i) features.hypervisor_signature[i] = static_cast<char>(words[i / 4] >> (8 * (i % 4)));
        features.hypervisor_signature[12] = '\0';
        for (uint32_t i = 0; i < 6 && 0x40000000 + i <= base.eax; ++i) features.hypervisor_leaves[i] = cpuid(0x40000000 + i);
    }
}

const CpuFeatures& cpu_features() { return features; }

}  // namespace hvkvm::guest::x86
