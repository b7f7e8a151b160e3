#include "cpu/cpuid.h"

namespace hvkvm::vmm {

std::vector<kvm_cpuid_entry2> vcpu_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_index, uint32_t vcpu_count) {
    std::vector<kvm_cpuid_entry2> entries = supported;
    for (auto& entry : entries) {
        switch (entry.function) {
        case 0x1:
            // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
            entry.ebx = (entry.ebx & 0x0000ffff) | (vcpu_index << 24) | ((vcpu_count & 0xff) << 16);
            break;
        case 0xb:
        case 0x1f:
            entry.edx = vcpu_index;  // x2APIC ID
            break;
        default: break;
        }
    }
    return entries;
}

}  // namespace hvkvm::vmm
