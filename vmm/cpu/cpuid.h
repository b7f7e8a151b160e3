// The CPUID table each vCPU sees: what the host's KVM supports, with per-vCPU topology fields,
// and our hypervisor leaves (hvkvm/abi/hypercall.h) in place of KVM's own 0x400000xx leaves.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace hvkvm::vmm {

struct HypervisorLeaves {
    uint32_t spin_count;     // 0x40000004 EBX; abi::hv::kSpinCountNeverNotify to disable
    uint32_t max_vcpus;      // 0x40000005 EAX
    uint32_t host_cpus;      // 0x40000005 EBX
};

std::vector<kvm_cpuid_entry2> vcpu_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_index, uint32_t vcpu_count,
                                         const HypervisorLeaves& hypervisor);

}  // namespace hvkvm::vmm
