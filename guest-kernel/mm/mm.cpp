#include "mm/mm.h"

#include "mm/node_topology.h"
#include "mm/page_allocator.h"
#include "mm/paging.h"

namespace hvkvm::guest::mm {

void init(const abi::BootInfo& boot_info) {
    init_node_topology(boot_info);   // the ACPI tables: which node each CPU and page is on
    init_page_allocator(boot_info);  // runs on the VMM's boot page tables, which map all RAM
    init_paging(boot_info);
}

}  // namespace hvkvm::guest::mm
