#include "boot/acpi_tables.h"

#include <cstring>
#include <stdexcept>

#include "hvkvm/abi/boot.h"
#include "hvkvm/acpi/host/builder.h"
#include "hvkvm/acpi/tables.h"
#include "kvm/guest_memory.h"

namespace hvkvm::vmm {
namespace {

static_assert(acpi::host::kMaxAcpiImageBytes <= abi::kAcpiTablesMax, "the largest ACPI image fits its reserved space");

void add_node_cpus(numa::Topology& topology, uint32_t node, const std::vector<uint32_t>& vcpus) {
    for (uint32_t vcpu : vcpus) topology.node_cpus[node].add(vcpu);
}

// The byte whose change spoils a table's checksum: the RSDP's first checksum, or the header's.
uint64_t checksum_offset(std::string_view signature) {
    return signature == "RSD PTR " ? offsetof(acpi::Rsdp, checksum) : offsetof(acpi::TableHeader, checksum);
}

}  // namespace

numa::Topology guest_topology(const VmConfig& config, const MemoryLayout& layout) {
    numa::Topology topology;
    const NumaConfig& numa_config = config.numa;
    if (numa_config.enabled()) {
        topology.node_count = static_cast<uint32_t>(numa_config.nodes.size());
        for (uint32_t node = 0; node < topology.node_count; ++node) add_node_cpus(topology, node, numa_config.nodes[node].vcpus);
        for (uint32_t from = 0; from < topology.node_count; ++from)
            for (uint32_t to = 0; to < topology.node_count; ++to)
                topology.distances.set(from, to, static_cast<uint8_t>(numa_config.distances.at(from).at(to)));
    } else {
        topology.node_count = 1;
        topology.node_cpus[0] = numa::CpuSet::range(0, config.machine.vcpus);
        topology.distances.set(0, 0, numa::kLocalDistance);
    }
    if (layout.ram().size() > numa::kMaxMemoryRanges) throw std::length_error("guest RAM has too many regions for the SRAT");
    for (const RamRegion& region : layout.ram())
        topology.memory_ranges[topology.memory_range_count++] = numa::MemoryRange{region.gpa, region.size, region.node};
    return topology;
}

AcpiPlacement write_acpi_tables(GuestMemory& memory, const numa::Topology& topology, uint32_t vcpu_count,
                                std::string_view corrupt_table) {
    acpi::host::AcpiImage image =
        acpi::host::build_acpi_tables(topology, vcpu_count, abi::kAcpiTablesGpa, acpi::host::ApicEntries::kXApic);
    if (!corrupt_table.empty()) {
        const acpi::host::TableLocation& table = image.table(corrupt_table);
        image.bytes[table.offset + checksum_offset(corrupt_table)] ^= 0x5a;
    }
    std::memcpy(memory.span(abi::kAcpiTablesGpa, image.bytes.size()).data(), image.bytes.data(), image.bytes.size());
    return AcpiPlacement{image.rsdp_gpa(), image.gpa, image.bytes.size()};
}

}  // namespace hvkvm::vmm
