// The guest's ACPI tables: the NUMA topology the config describes (nodes' vCPUs, their RAM as the
// memory layout placed it, distances), written as RSDP, XSDT, MADT, SRAT and SLIT at
// abi::kAcpiTablesGpa (docs/numa.md). The boot info tells the guest where they are.
#pragma once

#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "hvkvm/numa/topology.h"
#include "kvm/memory_layout.h"

namespace hvkvm::vmm {

class GuestMemory;

// Without numa.nodes: one node with every vCPU and all RAM. Every RAM region of `layout` becomes a
// memory range of its node (a node split by the MMIO hole has two).
numa::Topology guest_topology(const VmConfig& config, const MemoryLayout& layout);

struct AcpiPlacement {
    uint64_t rsdp_gpa = 0;
    uint64_t tables_gpa = 0;
    uint64_t tables_size = 0;
};

// Writes the tables into guest RAM. `corrupt_table` (debug.corrupt_acpi_table) names a table whose
// checksum is then spoilt, for tests of the guest's refusal; empty for none.
AcpiPlacement write_acpi_tables(GuestMemory& memory, const numa::Topology& topology, uint32_t vcpu_count,
                                std::string_view corrupt_table = {});

}  // namespace hvkvm::vmm
