#include "cpu/cpuid.h"

#include <algorithm>
#include <iterator>
#include <cstring>

#include "hvkvm/abi/hypercall.h"

namespace hvkvm::vmm {
namespace {

using namespace abi::hv;

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t eax, uint32_t ebx = 0, uint32_t ecx = 0, uint32_t edx = 0) {
    kvm_cpuid_entry2 entry{};
    entry.function = function;
    entry.eax = eax;
    entry.ebx = ebx;
    entry.ecx = ecx;
    entry.edx = edx;
    return entry;
}

uint32_t signature_word(int index) {
    uint32_t word;
    std::memcpy(&word, kVendorSignature + 4 * index, sizeof word);
    return word;
}

void append_hypervisor_leaves(std::vector<kvm_cpuid_entry2>& entries, const HypervisorLeaves& hypervisor) {
    entries.push_back(leaf(kCpuidVendor, kCpuidMaxLeaf, signature_word(0), signature_word(1), signature_word(2)));
    entries.push_back(leaf(kCpuidInterface, kInterfaceSignature));
    entries.push_back(leaf(kCpuidVersion, /*build*/ 1, /*major.minor*/ 0x00000001));
    entries.push_back(leaf(kCpuidFeatures,
                           kPrivilegeReferenceCounter | kPrivilegeSynicMsrs | kPrivilegeHypercallMsrs | kPrivilegeVpIndex |
                               kPrivilegeFrequencyMsrs,
                           kPrivilegePostMessages | kPrivilegeSignalEvents, 0, kFeatureFrequencyMsrs));
    entries.push_back(leaf(kCpuidRecommendations, kRecommendRelaxedTiming | kRecommendNoAutoEoi, hypervisor.spin_count));
    entries.push_back(leaf(kCpuidLimits, hypervisor.max_vcpus, hypervisor.host_cpus));
}

}  // namespace

std::vector<kvm_cpuid_entry2> vcpu_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                         uint32_t vcpu_index, uint32_t vcpu_count,
                                         const HypervisorLeaves& hypervisor) {
    std::vector<kvm_cpuid_entry2> entries;
    // KVM's own paravirtual leaves (0x40000000..0x400000ff) give way to ours.
    std::copy_if(supported.begin(), supported.end(), std::back_inserter(entries),
                 [](const kvm_cpuid_entry2& entry) { return entry.function < 0x40000000 || entry.function > 0x400000ff; });
    append_hypervisor_leaves(entries, hypervisor);
    for (auto& entry : entries) {
        switch (entry.function) {
        case 0x1:
            // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package.
            entry.ebx = (entry.ebx & 0x0000ffff) | (vcpu_index << 24) | ((vcpu_count & 0xff) << 16);
            entry.ecx |= 1u << 31;  // a hypervisor is present
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
