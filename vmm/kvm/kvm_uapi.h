// C-layout versions of the <linux/kvm.h> structures that end in a flexible array.
//
// The kernel headers declare those arrays with __DECLARE_FLEX_ARRAY, which wraps an empty struct.
// An empty struct has size 0 in C but 1 in C++, so in C++ these structures grow by 4 bytes: the
// array moves, and the ioctl numbers (which encode sizeof the argument) no longer match the
// kernel's (KVM_GET_SUPPORTED_CPUID fails with EINVAL). Every use of such a structure in the VMM
// goes through the definitions below instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace hvkvm::vmm::uapi {

struct CpuidHeader {  // struct kvm_cpuid2 without its entries[]
    uint32_t nent;
    uint32_t padding;
};
static_assert(sizeof(CpuidHeader) == 8);

struct IrqRoutingHeader {  // struct kvm_irq_routing without its entries[]
    uint32_t nr;
    uint32_t flags;
};
static_assert(sizeof(IrqRoutingHeader) == 8);

struct StatsDescriptor {  // struct kvm_stats_desc without its name[]
    uint32_t flags;
    int16_t exponent;
    uint16_t size;
    uint32_t offset;
    uint32_t bucket_size;
};
static_assert(sizeof(StatsDescriptor) == 16);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

}  // namespace hvkvm::vmm::uapi
