// The NUMA topology the kernel runs on, read once at boot from the VMM's ACPI tables (SRAT, SLIT,
// MADT; mm/numa_discovery.h): which node each CPU and each range of physical memory belongs to,
// the distances between nodes, and each node's fallback order (the order in which its
// allocations try the nodes: itself, then the others nearest first, round-robin among equals, as
// Linux builds its zonelists; hvkvm/numa/fallback_order.h). Without a NUMA config the VMM
// describes one node holding everything, and all of this degenerates to node 0.
//
// Read-only after init_node_topology(), so every query is lock-free.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"
#include "hvkvm/acpi/parser.h"
#include "hvkvm/numa/cpu_set.h"
#include "hvkvm/numa/fallback_order.h"
#include "hvkvm/numa/limits.h"

namespace hvkvm::guest::mm {

inline constexpr uint32_t kNoNode = numa::kNoNode;

// Parses and checks the ACPI tables (panics with the reason if they are malformed or disagree
// with the boot info), computes the fallback orders, and records every CPU's node in its PerCpu.
// Boot CPU, before the page allocator.
void init_node_topology(const abi::BootInfo& boot_info);

uint32_t node_count();
uint32_t node_of_cpu(uint32_t cpu);
numa::CpuSet cpus_of_node(uint32_t node);
uint32_t node_distance(uint32_t from, uint32_t to);
uint64_t node_memory_bytes(uint32_t node);  // as the SRAT describes it
// Where allocations meant for `node` look, in order; excludes nodes without memory and nodes
// unreachable from `node` (distance 255).
const numa::NodeOrder& fallback_order(uint32_t node);
// The SRAT's node for a physical address, or kNoNode if no memory range holds it.
uint32_t srat_node_of(uint64_t physical_address);
// The SRAT memory range holding `physical_address` ends here (for splitting RAM into zones).
uint64_t srat_range_end(uint64_t physical_address);

// Everything the ACPI tables said (I/O APIC, interrupt overrides, ...), for whoever needs it.
const acpi::ParsedTables& platform_tables();

}  // namespace hvkvm::guest::mm
