// Physical page allocator: one zone of buddy-managed RAM per NUMA node, with per-CPU caches of
// single pages in front (one cache per CPU and node), so that the common case (one page) takes no
// shared lock.
//
// Placement follows the Windows Server 2008 model: memory comes from the running thread's ideal
// node (PerCpu::memory_node), even while the thread runs on another node's CPU; when that node is
// at its low watermark, from the other nodes in its fallback order (node_topology.h). Each
// allocation is counted per node as Linux's numastat does: hit / miss / foreign (against the
// ideal node) and local / other (against the CPU's node).
//
// Physical memory is identity-mapped, so a page's physical address is also its kernel pointer.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"
#include "mm/buddy.h"

namespace hvkvm::guest::mm {

// Builds the zones from the boot memory map split at the SRAT's node boundaries (boot CPU, after
// init_node_topology, before any other CPU runs). Each area's page metadata is carved out of that
// area itself, and each CPU's caches out of its own node: metadata is node-local.
void init_page_allocator(const abi::BootInfo& boot_info);

enum class NodePolicy : uint8_t {
    kPreferred,              // that node first; below its low watermark (or empty), the others in
                             // its fallback order
    kOnly,                   // that node or nothing (down to its last page)
    kOnlyAboveLowWatermark,  // that node, never taking it below its low watermark (migration)
};

// 2^order contiguous pages, naturally aligned, preferring the running thread's ideal node; 0 if
// memory is exhausted.
uint64_t allocate_pages(uint32_t order);
// The same, for an explicit node (which must exist).
uint64_t allocate_pages_on_node(uint32_t order, uint32_t node, NodePolicy policy = NodePolicy::kPreferred);
// Panics on a double free, a wrong order or an address the allocator does not own.
void free_pages(uint64_t physical_address, uint32_t order);

// The node of a page the allocator manages, or kNoNode (node_topology.h) for any other address.
uint32_t node_of_address(uint64_t physical_address);

// The order of the live allocation starting at `physical_address`, or -1 if none starts there.
int allocated_order(uint64_t physical_address);

// One byte per page for whoever owns it (the heap records each slab page's size class). Only the
// page's owner reads or writes its tag; freshly allocated pages have tag 0.
void set_page_tag(uint64_t physical_address, uint8_t tag);
uint8_t page_tag(uint64_t physical_address);
// The tag and the node of a page in one lookup (tag 0 and kNoNode if the allocator does not own it).
struct PageOwner {
    uint8_t tag;
    uint32_t node;
};
PageOwner page_owner(uint64_t physical_address);

struct PageStats {
    uint64_t managed_pages;     // pages handed to the allocator
    uint64_t free_pages;        // free in the zones plus held in per-CPU caches
    uint64_t cached_pages;      // of which in per-CPU caches
    uint64_t free_blocks[kOrderCount];
    uint32_t zone_count;
};
PageStats page_stats();

// Per node, in pages (summed over CPUs; each CPU counts its own allocations, so a snapshot).
struct NodeStats {
    uint64_t managed_pages;
    uint64_t free_pages;        // in the zone plus in every CPU's cache of this node
    uint64_t cached_pages;
    uint64_t low_watermark;     // the zone counts as under pressure at or below this many free pages
    uint64_t hit;               // allocated here, and this was the thread's ideal node
    uint64_t miss;              // allocated here, although the ideal node was another
    uint64_t foreign;           // meant for this node (the ideal node), allocated elsewhere
    uint64_t local;             // allocated here by a CPU of this node
    uint64_t other;             // allocated here by a CPU of another node
    uint64_t migrated_in;       // pages moved here by migration
};
NodeStats node_stats(uint32_t node);
void count_migrated_in(uint32_t node, uint64_t pages);

// Returns every CPU's cached pages to the zones (allocation does this itself when the zones run
// dry; tests use it to see exact zone state).
void drain_page_cache();

// Checks every zone's free lists against their metadata (for tests).
bool page_allocator_consistent();

}  // namespace hvkvm::guest::mm
