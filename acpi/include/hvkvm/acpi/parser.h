// The guest's reader of the VMM's ACPI tables: from the RSDP, through the XSDT, to the MADT
// (CPUs, I/O APIC, interrupt overrides), SRAT (which node each CPU and memory range is on) and
// SLIT (node distances). Freestanding and allocation-free, so the guest runs it at boot; the
// host's tests run the same code.
//
// The tables are outside input: every address must lie in the window the caller names, every
// length, checksum, revision and entry is checked, and the first problem is returned as a
// message naming the table, the entry and the rule ("SRAT entry 4: ..."), for the guest's panic.
#pragma once

#include <stdint.h>

#include "hvkvm/numa/limits.h"
#include "hvkvm/numa/status.h"
#include "hvkvm/numa/topology.h"

namespace hvkvm::acpi {

// The guest-physical range the tables live in, and where the caller can read it: bytes[i] is
// the byte at guest-physical gpa + i.
struct TableWindow {
    const uint8_t* bytes = nullptr;
    uint64_t gpa = 0;
    uint64_t size = 0;
};

inline constexpr uint32_t kMaxXsdtEntries = 16;
inline constexpr uint32_t kMaxIoApics = 1;               // hvkvm models one I/O APIC
inline constexpr uint32_t kMaxInterruptOverrides = 16;   // one per ISA IRQ at most
inline constexpr uint32_t kIsaIrqCount = 16;

struct Cpu {
    uint32_t apic_id = 0;  // = vCPU index; the MADT's APIC IDs are 0..cpu_count-1
    uint32_t uid = 0;      // ACPI processor UID
    uint32_t node = 0;
};

struct IoApic {
    uint32_t id = 0;
    uint32_t address = 0;
    uint32_t gsi_base = 0;
};

struct InterruptOverride {
    uint8_t isa_irq = 0;
    uint32_t gsi = 0;
    uint16_t flags = 0;  // MPS INTI flags
};

struct ParsedTables {
    uint32_t local_apic_address = 0;
    bool pc_at_compatible = false;  // dual 8259 PICs present (they must be masked)
    uint32_t cpu_count = 0;
    Cpu cpus[numa::kMaxCpus];       // in MADT order
    uint32_t io_apic_count = 0;
    IoApic io_apics[kMaxIoApics];
    uint32_t override_count = 0;
    InterruptOverride overrides[kMaxInterruptOverrides];
    // Nodes are the SLIT's localities; node i is proximity domain i. Validated with
    // numa::validate_topology (asymmetric distances allowed, as in ACPI).
    numa::Topology topology;
};

// Parses the tables reachable from the RSDP at `rsdp_gpa`. On failure `out` is unspecified.
numa::Status parse_acpi_tables(const TableWindow& window, uint64_t rsdp_gpa, ParsedTables& out);

}  // namespace hvkvm::acpi
