// The kernel's address space: one set of page tables shared by every CPU.
//
//   - RAM (usable, boot data, kernel image) is identity-mapped, so physical addresses are kernel
//     pointers; the kernel image with per-section permissions (text RX, rodata R, data RW, NX
//     wherever not executable). Page 0 and reserved RAM stay unmapped: a null dereference faults.
//   - Device registers are mapped uncached on request (map_mmio).
//   - Kernel stacks live in their own range, each with an unmapped guard page below it.
//
// PVM hosts require U/S=1 in every entry at every level and no 1 GiB pages; both are harmless
// elsewhere, so the same tables serve every platform.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest::mm {

enum MapFlags : uint32_t {
    kMapWritable = 1u << 0,
    kMapExecutable = 1u << 1,
    kMapUncached = 1u << 2,
};

enum class PageSize : uint8_t { k4KiB, k2MiB };

// Builds the kernel address space and switches this CPU to it (boot CPU, after the page
// allocator is up).
void init_paging(const abi::BootInfo& boot_info);
uint64_t kernel_page_table_root();  // CR3 value for the other CPUs

// Maps one page. False if the range is already mapped (in whole or part) or a page table cannot
// be allocated.
bool map_page(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags);
// Unmaps one page and removes it from every CPU's TLB. Returns the physical address it mapped,
// or 0 if nothing was mapped there with that size.
uint64_t unmap_page(uint64_t virtual_address, PageSize size);
// The physical address behind `virtual_address`, or 0 if it is not mapped.
uint64_t translate(uint64_t virtual_address);

// Makes [physical_address, +length) reachable as uncached memory at the same address.
uint64_t map_mmio(uint64_t physical_address, uint64_t length);

// Kernel stacks: [bottom, top) is mapped read/write; the page below `bottom` is the guard.
inline constexpr uint64_t kStackRegionStart = 0x0000100000000000ull;  // 16 TiB
inline constexpr uint64_t kStackRegionEnd = 0x0000200000000000ull;    // 32 TiB
inline constexpr uint64_t kStackSlotBytes = 64 * 1024;                // guard + up to 60 KiB
struct KernelStack {
    uint64_t bottom = 0;
    uint64_t top = 0;
};
// False if out of memory or `bytes` exceeds kStackSlotBytes minus the guard page.
bool allocate_stack(uint64_t bytes, KernelStack& stack);
void free_stack(const KernelStack& stack);
// True if `address` lies in the guard page of some stack slot (for stack-overflow diagnosis;
// takes no lock, so the crash path may ask).
bool is_stack_guard_page(uint64_t address);

// Pages holding page tables (they are kept once created, like the ranges they describe).
uint64_t page_table_pages();

}  // namespace hvkvm::guest::mm
