// Memory that can move between NUMA nodes, and the mechanism that moves it.
//
// Most kernel memory is identity-mapped (a page's physical address is its pointer), so it cannot
// move. A MappedRegion is instead mapped page by page at its own virtual addresses (like Linux's
// vmalloc), and so each page can be replaced by a copy on another node without its users
// noticing. Every region has a home node: the ideal node of the thread that maps it, which follows
// that thread when its ideal processor moves (sched::set_ideal_processor). Pages away from home —
// placed elsewhere because the home node was under pressure, or left behind when the home moved —
// are "misplaced", and migrate_misplaced_pages() moves them home while the home node is above its
// low watermark. The kernel's migration thread (kernel/memory_migration.h) calls it at a limited
// rate.
//
// Moving a page: its entry becomes a migration entry (not present), every CPU's TLB is flushed,
// the contents are copied to a page on the home node, and the entry is pointed there. A CPU that
// touches the page meanwhile faults; the page-fault handler waits (wait_for_migrating_page) and
// retries the access. The copy runs with interrupts off, so it is never preempted while others
// wait; the waiting CPU serves cross-CPU calls, so the flush is never blocked by it.
#pragma once

#include <stdint.h>

#include "lib/intrusive_list.h"

namespace hvkvm::guest::mm {

struct MappedRegion {
    uint64_t base = 0;        // virtual address of its first page
    uint64_t pages = 0;
    uint32_t home_node = 0;   // read and written atomically: set_region_home()
    uint32_t pins = 0;        // migration passes working on it; unmap waits for them
    ListNode registry_link;   // in mm's list of regions
    ListNode owner_link;      // in its owner's list (a thread's: kernel/sched)
};

// Maps `bytes` (rounded up to pages) of memory preferring `home_node`, at fresh virtual addresses
// in the home node's part of the mapped-region range (with an unmapped page after the region), so
// that its page tables are on that node too. Contents are undefined. False if out of memory or
// address space.
bool map_region(MappedRegion& region, uint64_t bytes, uint32_t home_node);
// Unmaps and frees it (waiting for a migration pass working on it to finish).
void unmap_region(MappedRegion& region);
// Its pages then migrate to `node` at the migration rate.
void set_region_home(MappedRegion& region, uint32_t node);
uint32_t region_home(const MappedRegion& region);
// How many of its pages are on `node` now.
uint64_t region_pages_on_node(const MappedRegion& region, uint32_t node);

struct MigrationPass {
    uint64_t migrated;        // pages moved home in this pass
    uint64_t misplaced_left;  // pages still away from home afterwards
    uint64_t blocked;         // pages that could not move: their home node is at its low watermark
};
// Moves up to `budget` misplaced pages home, walking every region once (one pass at a time: a
// second caller waits for the first).
MigrationPass migrate_misplaced_pages(uint64_t budget);

// For the page-fault handler: true if the fault (address, #PF error code) hit a page being
// migrated, after waiting until it is mapped again (retry the access); false for any other fault.
bool wait_for_migrating_page(uint64_t virtual_address, uint64_t error_code);

// Called (from thread context) whenever pages may have become misplaced: a region mapped partly
// away from home, or given a new home. The kernel's migration thread sets it to wake itself.
void set_migration_wakeup(void (*wakeup)());

struct MigrationStats {
    uint64_t regions;          // mapped now
    uint64_t region_pages;     // mapped now
    uint64_t migrated;         // pages moved since boot
    uint64_t passes;
    uint64_t largest_pass;     // most pages moved by one pass (what the rate limit bounds)
    uint64_t blocked;          // page moves refused because the home node was under pressure
    uint64_t fault_waits;      // accesses that waited for a page being migrated
};
MigrationStats migration_stats();

}  // namespace hvkvm::guest::mm
