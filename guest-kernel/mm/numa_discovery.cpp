#include "mm/numa_discovery.h"

namespace hvkvm::guest::mm {
namespace {

using numa::Status;

uint64_t overlap(uint64_t base, uint64_t end, const numa::MemoryRange& range) {
    const uint64_t start = base > range.base ? base : range.base;
    const uint64_t stop = end < range.end() ? end : range.end();
    return stop > start ? stop - start : 0;
}

// The SRAT's ranges do not overlap (the parser checked), so a region is covered exactly when its
// overlaps with them add up to its size.
uint64_t bytes_in_ranges(const numa::Topology& topology, uint64_t base, uint64_t end) {
    uint64_t covered = 0;
    for (uint32_t i = 0; i < topology.memory_range_count; ++i) covered += overlap(base, end, topology.memory_ranges[i]);
    return covered;
}

Status check_memory_map(const abi::BootInfo& boot_info, const numa::Topology& topology) {
    for (uint32_t i = 0; i < boot_info.memory_region_count; ++i) {
        const abi::MemoryRegion& region = boot_info.memory_regions[i];
        const uint64_t end = region.base + region.size;
        if (end < region.base || bytes_in_ranges(topology, region.base, end) != region.size)
            return Status::failure("ACPI: memory-map region %u [%#lx, %#lx) is not inside the SRAT's memory", i,
                                   static_cast<unsigned long>(region.base), static_cast<unsigned long>(end));
    }
    uint64_t described = 0;
    for (uint32_t i = 0; i < topology.memory_range_count; ++i) described += topology.memory_ranges[i].size;
    if (described > boot_info.memory_bytes)
        return Status::failure("ACPI: the SRAT describes %lu KiB of memory, the boot info only %lu KiB",
                               static_cast<unsigned long>(described >> 10),
                               static_cast<unsigned long>(boot_info.memory_bytes >> 10));
    return Status::ok();
}

}  // namespace

Status discover_topology(const abi::BootInfo& boot_info, const uint8_t* acpi_window, acpi::ParsedTables& out) {
    const acpi::TableWindow window{acpi_window, boot_info.acpi_tables_gpa, boot_info.acpi_tables_size};
    Status parsed = acpi::parse_acpi_tables(window, boot_info.acpi_rsdp_gpa, out);
    if (!parsed) return parsed.with_prefix("ACPI");
    if (out.cpu_count != boot_info.vcpu_count)
        return Status::failure("ACPI: the MADT lists %u CPUs, the boot info %u", out.cpu_count, boot_info.vcpu_count);
    return check_memory_map(boot_info, out.topology);
}

}  // namespace hvkvm::guest::mm
