// The memory manager's start-up: physical page allocator, then the kernel's own page tables.
// Everything else is in page_allocator.h, paging.h and heap.h.
#pragma once

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest::mm {

// Boot CPU, once, before any other CPU or thread runs.
void init(const abi::BootInfo& boot_info);

}  // namespace hvkvm::guest::mm
