#include "arch/x86_64/tlb.h"

namespace hvkvm::guest::x86 {

void flush_tlb_everywhere(uint64_t virtual_address, uint64_t pages) {
    for (uint64_t i = 0; i < pages; ++i) invalidate_page(virtual_address + i * 4096);
}

}  // namespace hvkvm::guest::x86
