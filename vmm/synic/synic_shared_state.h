// The page the VMM's SynIC shares (read-only) with the root partition: where each VP's event-flag
// page is, so that the root can set channel flags itself (root-partition/guest_signals.h). The
// VMM stores with release semantics; readers load each field with acquire. A SIEFP address of 0
// means "disabled": set no flags.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"

namespace hvkvm::vmm {

struct SynicSharedState {
    static constexpr uint64_t kMagic = 0x5354415443494e59ull;  // "YNICTATS"
    uint64_t magic;
    uint32_t vp_count;
    uint32_t reserved;
    uint64_t siefp_gpa[abi::kMaxVcpus];
};
static_assert(sizeof(SynicSharedState) <= abi::kPageSize);

}  // namespace hvkvm::vmm
