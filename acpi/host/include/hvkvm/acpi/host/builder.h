// The VMM's writer of the guest's ACPI tables: RSDP, XSDT, MADT, SRAT and SLIT in one byte
// image to be copied to guest memory at a given GPA (RSDP first). Host only.
//
// Two levels: build_acpi_tables() takes a NUMA topology, validates it and writes the tables
// the guest expects (APIC ID = UID = vCPU index, one I/O APIC at abi::kIoApicGpa, ISA IRQ 0
// routed to GSI 2, NMI on LINT1). write_acpi_tables() writes a MachineDescription exactly as
// given, without checks, so that tests can also produce tables the guest must refuse.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "hvkvm/abi/boot.h"
#include "hvkvm/acpi/parser.h"
#include "hvkvm/acpi/tables.h"
#include "hvkvm/numa/topology.h"

namespace hvkvm::acpi::host {

// Local APIC entries (MADT type 0, SRAT type 0; IDs and UIDs up to 255) or local x2APIC entries
// (MADT type 9, SRAT type 2).
enum class ApicEntries { kXApic, kX2Apic };

struct MachineDescription {
    struct Cpu {
        uint32_t apic_id = 0;
        uint32_t uid = 0;
        uint32_t node = 0;
        bool in_madt = true;          // false: only in the SRAT
        bool in_srat = true;          // false: only in the MADT
    };
    struct Memory {
        uint64_t base = 0;
        uint64_t size = 0;
        uint32_t node = 0;
        uint32_t flags = kMemoryEnabled;
    };

    ApicEntries apic_entries = ApicEntries::kXApic;
    uint32_t local_apic_address = static_cast<uint32_t>(abi::kLocalApicGpa);
    bool pc_at_compatible = true;     // KVM's in-kernel irqchip has the two 8259 PICs
    std::vector<Cpu> cpus;
    std::vector<IoApic> io_apics{IoApic{0, static_cast<uint32_t>(abi::kIoApicGpa), 0}};
    // The PIT's IRQ 0 arrives on I/O APIC pin 2 (the usual PC wiring; pin 0 is the 8259's output).
    std::vector<InterruptOverride> overrides{InterruptOverride{0, 2, 0}};
    bool nmi_on_lint1 = true;         // one NMI entry for all processors
    std::vector<Memory> memory;
    uint64_t locality_count = 0;
    std::vector<uint8_t> distances;   // locality_count x locality_count, row-major
};

// The tables the guest expects for a valid topology (see the top of this file).
MachineDescription describe_machine(const numa::Topology& topology, ApicEntries apic_entries);

struct TableLocation {
    std::string_view signature;  // "RSD PTR ", "XSDT", "APIC", "SRAT", "SLIT"
    uint64_t offset = 0;         // in AcpiImage::bytes
    uint32_t length = 0;
};

struct AcpiImage {
    uint64_t gpa = 0;  // of bytes[0], the RSDP
    std::vector<uint8_t> bytes;
    std::vector<TableLocation> tables;  // in the order above

    const TableLocation& table(std::string_view signature) const;  // throws if absent
    uint64_t rsdp_gpa() const { return gpa; }
    TableWindow window() const { return TableWindow{bytes.data(), gpa, bytes.size()}; }
};

// Writes `machine` as given. Throws std::invalid_argument only for what cannot be encoded
// (a GPA not 16-byte aligned, an ID above 255 with kXApic, more distances than localities...).
AcpiImage write_acpi_tables(const MachineDescription& machine, uint64_t gpa);

// Validates `topology` for `vcpu_count` vCPUs (asymmetric distances allowed, as in ACPI), then
// writes its tables; throws std::invalid_argument with the validation message if it is invalid.
AcpiImage build_acpi_tables(const numa::Topology& topology, uint32_t vcpu_count, uint64_t gpa,
                            ApicEntries apic_entries = ApicEntries::kXApic);

// The largest image build_acpi_tables() can produce (every limit reached, x2APIC entries, each
// table 16-byte aligned): the size of guest memory to reserve for it.
inline constexpr uint64_t kMaxAcpiImageBytes = 8192;

}  // namespace hvkvm::acpi::host
