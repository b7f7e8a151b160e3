// The guest's view of the platform from the VMM's ACPI tables: CPUs (MADT), NUMA nodes and which
// CPUs and memory each holds (SRAT), distances (SLIT). The tables are parsed and validated by the
// shared parser (hvkvm/acpi/parser.h); this then checks that they agree with the boot info.
//
// Portable (no kernel services): the host's unit tests run it on what the VMM writes.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/boot.h"
#include "hvkvm/acpi/parser.h"
#include "hvkvm/numa/status.h"

namespace hvkvm::guest::mm {

// `acpi_window` is the memory at boot_info.acpi_tables_gpa (acpi_tables_size bytes), which
// validate_boot_info() has checked lies where the ABI reserves it. On failure, the message says
// what is wrong ("ACPI: SLIT: checksum is wrong") and `out` is unspecified. Checks, after the
// parser's own:
//   - the MADT lists exactly boot_info.vcpu_count CPUs;
//   - every region of the boot memory map lies inside the SRAT's memory ranges, and the SRAT
//     describes no more memory than the boot info (a range of RAM in no node, or a node holding
//     memory that does not exist, would be placed wrongly or handed out).
numa::Status discover_topology(const abi::BootInfo& boot_info, const uint8_t* acpi_window, acpi::ParsedTables& out);

}  // namespace hvkvm::guest::mm
