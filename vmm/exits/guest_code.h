// Reading the guest's code the way its vCPU sees it: linear address -> guest-physical address
// through the guest's own page tables, then the bytes. The VMM needs this to decode the
// instruction behind an exit when the exit record alone is ambiguous (pio_exit.h). Every table
// entry and byte is guest memory, read once through GuestMemory::translate: a table that points
// outside RAM, or a mode this walker does not know, gives nullopt, never an out-of-range access.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "exits/pio_exit.h"

namespace hvkvm::vmm {

class GuestMemory;

// The paging-relevant control registers of a vCPU (from KVM_GET_SREGS).
struct PagingState {
    uint64_t cr0;
    uint64_t cr3;
    uint64_t cr4;
    uint64_t efer;
    bool code_64bit;  // CS.L in long mode: instructions decode as 64-bit code
};

inline PagingState paging_state(const kvm_sregs& sregs) {
    return {sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer, sregs.cs.l != 0};
}

// The guest-physical address of `linear` in 64-bit mode with 4- or 5-level paging; nullopt when
// not mapped, non-canonical, or the vCPU is in any other mode.
std::optional<uint64_t> guest_physical_address(const GuestMemory& memory, const PagingState& paging, uint64_t linear);

// Up to kMaxInstructionLength bytes of 64-bit code at `rip` (continuing into the next page if it
// is mapped), copied out of guest memory, and the guest-physical address of the first one.
struct GuestCode {
    uint64_t gpa = 0;
    std::array<uint8_t, kMaxInstructionLength> bytes{};
    size_t length = 0;  // 0: nothing could be read
    std::span<const uint8_t> view() const { return {bytes.data(), length}; }
};
GuestCode read_guest_code(const GuestMemory& memory, const PagingState& paging, uint64_t rip);

}  // namespace hvkvm::vmm
