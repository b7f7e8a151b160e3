// The memory manager's start-up: the NUMA topology from the ACPI tables, the physical page
// allocator, then the kernel's own page tables. Everything else is in node_topology.h,
// page_allocator.h, paging.h, heap.h and migration.h.
#pragma once

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest::mm {

// Boot CPU, once, before any other CPU or thread runs.
void init(const abi::BootInfo& boot_info);

}  // namespace hvkvm::guest::mm
