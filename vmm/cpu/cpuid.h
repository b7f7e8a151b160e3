// The CPUID table each vCPU sees: what the host's KVM supports, with per-vCPU topology fields.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace hvkvm::vmm {

std::vector<kvm_cpuid_entry2> vcpu_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_index, uint32_t vcpu_count);

}  // namespace hvkvm::vmm
