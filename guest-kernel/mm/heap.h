// Kernel heap: operator new/delete and allocate()/free() for kernel objects.
//
// Requests up to 2 KiB come from size classes; each class carves single pages into equal objects
// and keeps the free ones on a list (pages are tagged with their class, so free() finds the class
// from the page). Bigger requests, and alignments above 2 KiB, take whole buddy blocks, which are
// naturally aligned. Slab pages stay with their class once carved (no reaping yet).
//
// Every node has its own pool of size classes, holding objects of that node's pages only. An
// allocation is served from the running thread's ideal node (or the node asked for): a free
// object there, a fresh page there while the node is above its low watermark, then free objects
// of the other nodes nearest first, then a page from wherever the page allocator finds one.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::guest::mm {

// nullptr if memory is exhausted. `alignment` must be a power of two.
void* allocate(size_t size, size_t alignment = 16);
// The same, preferring `node` (which must exist) over the running thread's ideal node.
void* allocate_on_node(size_t size, uint32_t node, size_t alignment = 16);
void free(void* pointer);  // nullptr is ignored; anything not from allocate() panics

struct HeapStats {
    uint64_t live_allocations;  // allocate() minus free() calls
    uint64_t total_allocations;
    uint64_t slab_pages;        // pages carved into size classes
    uint64_t large_pages;       // pages held by live large allocations
};
HeapStats heap_stats();

}  // namespace hvkvm::guest::mm
