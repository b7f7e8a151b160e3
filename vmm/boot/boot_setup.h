// Everything the VMM writes into guest RAM before the first KVM_RUN, and the register state each
// vCPU starts with. See hvkvm/abi/boot.h for the layout the guest relies on.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>

#include "boot/acpi_tables.h"
#include "hvkvm/abi/boot.h"

namespace hvkvm::vmm {

class GuestMemory;
struct KernelImage;

struct BootParameters {
    uint32_t vcpu_count;
    uint32_t boot_flags;   // abi::BootFlags
    uint64_t tsc_khz;
    std::string cmdline;
    AcpiPlacement acpi;    // where write_acpi_tables() put the tables
};

struct BootLayout {
    uint64_t page_tables_gpa;  // CR3
    uint64_t page_tables_end;  // one past the last page-table page
};

// Identity map with 2 MiB pages of every RAM region and the 32-bit MMIO hole (uncached), with
// U/S=1 at every level: PVM hosts livelock on supervisor-only guest page-table entries.
BootLayout build_boot_page_tables(GuestMemory& memory);

void write_boot_gdt(GuestMemory& memory);

// Writes BootInfo, the command line, and a zeroed GuestReport page. The ACPI tables are written
// before (write_acpi_tables); BootInfo only says where they are.
void write_boot_info(GuestMemory& memory, const KernelImage& kernel, const BootLayout& layout,
                     const BootParameters& parameters);

// 64-bit long mode at CPL0 with the boot page tables and GDT, interrupts off.
kvm_sregs long_mode_sregs(kvm_sregs base, uint64_t cr3);
kvm_regs entry_regs(uint64_t entry, uint32_t vcpu_index);

// Validates a guest's request to start a secondary vCPU (everything but the vCPU's own state,
// which the caller checks) and returns kStarted if its register state is acceptable.
abi::VcpuStartStatus check_start_request(const abi::VcpuStartRequest& request, uint32_t vcpu_count,
                                         const GuestMemory& memory);
kvm_regs start_regs(const abi::VcpuStartRequest& request);

}  // namespace hvkvm::vmm
