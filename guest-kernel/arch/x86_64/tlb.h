// TLB maintenance after page-table changes.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::x86 {

inline void invalidate_page(uint64_t virtual_address) {
    __asm__ volatile("invlpg (%0)" : : "r"(virtual_address) : "memory");
}

// Removes [virtual_address, +pages*4KiB) from this CPU's TLB and every other online CPU's, and
// returns only when all of them have done so.
void flush_tlb_everywhere(uint64_t virtual_address, uint64_t pages);

// Flushes every CPU's entire TLB (non-global entries), for batches of unmapped ranges.
void flush_whole_tlb_everywhere();

}  // namespace hvkvm::guest::x86
