#include "kernel/boot_info.h"

namespace hvkvm::guest {

const char* validate_boot_info(const abi::BootInfo& info, const char* cmdline) {
    if (info.magic != abi::kBootInfoMagic) return "bad magic";
    if (info.version != abi::kBootInfoVersion) return "unsupported version";
    if (info.size != sizeof(abi::BootInfo)) return "size mismatch";
    if (info.vcpu_count == 0 || info.vcpu_count > abi::kMaxVcpus) return "vCPU count out of range";
    if (info.memory_region_count == 0 || info.memory_region_count > abi::kMaxMemoryRegions)
        return "memory region count out of range";
    if (info.cmdline_length >= abi::kCmdlineMax) return "command line too long";
    if (info.cmdline_gpa != abi::kCmdlineGpa || cmdline[info.cmdline_length] != '\0')
        return "command line not where the ABI puts it, or not NUL-terminated";
    for (uint32_t i = 1; i < info.memory_region_count; ++i) {
        const abi::MemoryRegion& previous = info.memory_regions[i - 1];
        if (info.memory_regions[i].base < previous.base + previous.size) return "memory regions unsorted or overlapping";
    }
    if (info.kernel_start >= info.kernel_end) return "empty kernel image range";
    if (info.acpi_tables_gpa != abi::kAcpiTablesGpa || info.acpi_tables_size == 0 ||
        info.acpi_tables_size > abi::kAcpiTablesMax)
        return "ACPI tables not where the ABI puts them, or larger than the space reserved";
    if (info.acpi_rsdp_gpa < info.acpi_tables_gpa || info.acpi_rsdp_gpa - info.acpi_tables_gpa >= info.acpi_tables_size)
        return "ACPI RSDP outside the ACPI tables";
    return nullptr;
}

}  // namespace hvkvm::guest
