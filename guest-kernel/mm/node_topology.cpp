#include "mm/node_topology.h"

#include "arch/x86_64/per_cpu.h"
#include "kernel/panic.h"
#include "mm/numa_discovery.h"

namespace hvkvm::guest::mm {
namespace {

// What the boot CPU learns from the ACPI tables: one per VM, written once before any other CPU
// runs, read-only afterwards.
struct NodeTopology {
    acpi::ParsedTables tables;
    numa::FallbackOrders orders;
    uint8_t cpu_node[abi::kMaxVcpus] = {};
} topology;

const numa::Topology& nodes() { return topology.tables.topology; }

}  // namespace

void init_node_topology(const abi::BootInfo& boot_info) {
    const auto* window = reinterpret_cast<const uint8_t*>(boot_info.acpi_tables_gpa);
    if (const numa::Status status = discover_topology(boot_info, window, topology.tables); !status)
        panic("%s", status.message());
    topology.orders = numa::compute_fallback_orders(nodes());
    for (uint32_t cpu = 0; cpu < boot_info.vcpu_count; ++cpu) {
        const uint32_t node = nodes().node_of_cpu(cpu);
        topology.cpu_node[cpu] = static_cast<uint8_t>(node);
        per_cpu(cpu).node = node;
        per_cpu(cpu).memory_node = node;
    }
}

uint32_t node_count() { return nodes().node_count; }

uint32_t node_of_cpu(uint32_t cpu) { return cpu < abi::kMaxVcpus ? topology.cpu_node[cpu] : 0; }

numa::CpuSet cpus_of_node(uint32_t node) { return node < node_count() ? nodes().node_cpus[node] : numa::CpuSet(); }

uint32_t node_distance(uint32_t from, uint32_t to) { return nodes().distances.at(from, to); }

uint64_t node_memory_bytes(uint32_t node) { return nodes().node_memory_bytes(node); }

const numa::NodeOrder& fallback_order(uint32_t node) { return topology.orders[node]; }

uint32_t srat_node_of(uint64_t physical_address) {
    for (uint32_t i = 0; i < nodes().memory_range_count; ++i) {
        const numa::MemoryRange& range = nodes().memory_ranges[i];
        if (physical_address >= range.base && physical_address < range.end()) return range.node;
    }
    return kNoNode;
}

uint64_t srat_range_end(uint64_t physical_address) {
    for (uint32_t i = 0; i < nodes().memory_range_count; ++i) {
        const numa::MemoryRange& range = nodes().memory_ranges[i];
        if (physical_address >= range.base && physical_address < range.end()) return range.end();
    }
    return physical_address;
}

const acpi::ParsedTables& platform_tables() { return topology.tables; }

}  // namespace hvkvm::guest::mm
