// TLB shootdown after page-table changes: this CPU's TLB and every other online CPU's, through
// cross-CPU calls. (A single page on this CPU only: x86::invalidate_page.)
#pragma once

#include <stdint.h>

namespace hvkvm::guest::mm {

// Removes [virtual_address, +pages*4KiB) from every online CPU's TLB; returns when all have.
void flush_tlb_everywhere(uint64_t virtual_address, uint64_t pages);

// Flushes every CPU's entire TLB (non-global entries), for batches of unmapped ranges.
void flush_whole_tlb_everywhere();

}  // namespace hvkvm::guest::mm
