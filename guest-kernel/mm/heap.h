// Kernel heap: operator new/delete and allocate()/free() for kernel objects.
//
// Requests up to 2 KiB come from size classes; each class carves single pages into equal objects
// and keeps the free ones on a list (pages are tagged with their class, so free() finds the class
// from the page). Bigger requests, and alignments above 2 KiB, take whole buddy blocks, which are
// naturally aligned. Slab pages stay with their class once carved (no reaping yet).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::guest::mm {

// nullptr if memory is exhausted. `alignment` must be a power of two.
void* allocate(size_t size, size_t alignment = 16);
void free(void* pointer);  // nullptr is ignored; anything not from allocate() panics

struct HeapStats {
    uint64_t live_allocations;  // allocate() minus free() calls
    uint64_t total_allocations;
    uint64_t slab_pages;        // pages carved into size classes
    uint64_t large_pages;       // pages held by live large allocations
};
HeapStats heap_stats();

}  // namespace hvkvm::guest::mm
