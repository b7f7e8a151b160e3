#include "mm/tlb.h"

#include "arch/x86_64/cpu.h"
#include "kernel/sync/cross_call.h"

namespace hvkvm::guest::mm {
namespace {

struct FlushRange {
    uint64_t virtual_address;
    uint64_t pages;
};

void flush_locally(void* argument) {
    const auto* range = static_cast<const FlushRange*>(argument);
    for (uint64_t i = 0; i < range->pages; ++i) x86::invalidate_page(range->virtual_address + i * 4096);
}

void flush_whole_tlb_locally(void*) {
    uint64_t cr3;
    __asm__ volatile("mov %%cr3, %0; mov %0, %%cr3" : "=r"(cr3) : : "memory");
}

}  // namespace

void flush_whole_tlb_everywhere() {
    flush_whole_tlb_locally(nullptr);
    if (smp::online_count() > 1) smp::run_on_other_cpus(flush_whole_tlb_locally, nullptr);
}

void flush_tlb_everywhere(uint64_t virtual_address, uint64_t pages) {
    FlushRange range{virtual_address, pages};
    flush_locally(&range);
    if (smp::online_count() > 1) smp::run_on_other_cpus(flush_locally, &range);
}

}  // namespace hvkvm::guest::mm
