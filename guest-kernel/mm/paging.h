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
// be allocated. New page tables go on `table_node` (by default the node of `physical_address`).
bool map_page(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags);
bool map_page(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags, uint32_t table_node);
// Unmaps one page and removes it from every CPU's TLB. Returns the physical address it mapped,
// or 0 if nothing was mapped there with that size.
uint64_t unmap_page(uint64_t virtual_address, PageSize size);
// Unmaps `count` 4 KiB pages from `virtual_address` with one TLB flush; stores the frames that
// were mapped in `frames` (room for `count`) and returns how many.
uint64_t unmap_pages(uint64_t virtual_address, uint64_t count, uint64_t* frames);
// The physical address behind `virtual_address`, or 0 if it is not mapped.
uint64_t translate(uint64_t virtual_address);

// Makes [physical_address, +length) reachable as uncached memory at the same address.
uint64_t map_mmio(uint64_t physical_address, uint64_t length);

// Kernel stacks: [bottom, top) is mapped read/write; the page below `bottom` is the guard.
inline constexpr uint64_t kStackRegionStart = 0x0000100000000000ull;  // 16 TiB
inline constexpr uint64_t kStackRegionEnd = 0x0000200000000000ull;    // 32 TiB
inline constexpr uint64_t kStackSlotBytes = 64 * 1024;                // guard + up to 60 KiB
// Mapped memory regions (migration.h), which can move between nodes page by page.
inline constexpr uint64_t kMappedRegionStart = 0x0000200000000000ull;  // 32 TiB
inline constexpr uint64_t kMappedRegionEnd = 0x0000300000000000ull;    // 48 TiB
struct KernelStack {
    uint64_t bottom = 0;
    uint64_t top = 0;
};
// False if out of memory or `bytes` exceeds kStackSlotBytes minus the guard page. The stack's
// pages come from `node` (by default the running thread's ideal node), and its slot from that
// node's part of the stack region, so that its page tables are on the node too.
bool allocate_stack(uint64_t bytes, KernelStack& stack);
bool allocate_stack(uint64_t bytes, KernelStack& stack, uint32_t node);
void free_stack(const KernelStack& stack);
// True if `address` lies in the guard page of some stack slot (for stack-overflow diagnosis;
// takes no lock, so the crash path may ask).
bool is_stack_guard_page(uint64_t address);

// Pages holding page tables (they are kept once created, like the ranges they describe). Each is
// allocated on the node of the memory it first maps.
uint64_t page_table_pages();
// The physical addresses of the tables a walk for `virtual_address` reads, root first; returns
// how many (it stops at a missing entry or a large page).
uint32_t page_tables_of(uint64_t virtual_address, uint64_t (&tables)[4]);

// Page migration (migration.h). begin: turns the present 4 KiB mapping at `virtual_address` into
// a migration entry (not present; accesses fault and wait) and returns its frame, or 0 if nothing
// is mapped there; the caller then flushes every TLB before copying. finish: maps `new_frame`
// there with the old permissions. page_state: for the page-fault path (takes no lock).
uint64_t begin_page_migration(uint64_t virtual_address);
void finish_page_migration(uint64_t virtual_address, uint64_t new_frame);
enum class PageState : uint8_t { kNotMapped, kPresent, kMigrating };
PageState page_state(uint64_t virtual_address);

}  // namespace hvkvm::guest::mm
