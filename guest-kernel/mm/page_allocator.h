// Physical page allocator: zones of buddy-managed RAM, with a per-CPU cache of single pages in
// front so that the common case (one page) takes no lock. Today there is one zone holding all
// usable RAM; with a virtual NUMA topology each node becomes a zone, and a CPU's cache and first
// choice are its own node's zone.
//
// Physical memory is identity-mapped, so a page's physical address is also its kernel pointer.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"
#include "mm/buddy.h"

namespace hvkvm::guest::mm {

// Builds the zones from the boot memory map (boot CPU, before any other CPU runs). The page
// metadata is carved out of usable RAM first.
void init_page_allocator(const abi::BootInfo& boot_info);

// 2^order contiguous pages, naturally aligned; 0 if memory is exhausted.
uint64_t allocate_pages(uint32_t order);
// Panics on a double free, a wrong order or an address the allocator does not own.
void free_pages(uint64_t physical_address, uint32_t order);

// The order of the live allocation starting at `physical_address`, or -1 if none starts there.
int allocated_order(uint64_t physical_address);

// One byte per page for whoever owns it (the heap records each slab page's size class). Only the
// page's owner reads or writes its tag; freshly allocated pages have tag 0.
void set_page_tag(uint64_t physical_address, uint8_t tag);
uint8_t page_tag(uint64_t physical_address);

struct PageStats {
    uint64_t managed_pages;     // pages handed to the allocator
    uint64_t free_pages;        // free in the zones plus held in per-CPU caches
    uint64_t cached_pages;      // of which in per-CPU caches
    uint64_t free_blocks[kOrderCount];
    uint32_t zone_count;
};
PageStats page_stats();

// Returns every CPU's cached pages to the zones (allocation does this itself when the zones run
// dry; tests use it to see exact zone state).
void drain_page_cache();

// Checks every zone's free lists against their metadata (for tests).
bool page_allocator_consistent();

}  // namespace hvkvm::guest::mm
