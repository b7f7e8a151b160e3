// The ACPI tables the VMM writes and the guest reads (ACPI 6.3 layouts): RSDP (2.0+), XSDT,
// MADT, SRAT and SLIT, with exactly the subtables hvkvm uses. Compiled by both sides, so only
// fixed-width types; every size and offset is pinned below. Multi-byte fields are little-endian
// and often unaligned (an XSDT entry sits at offset 36), hence packed structs: code copies a
// whole struct out of the table bytes with memcpy and reads its fields from the copy.
// docs/numa.md shows how the tables are laid out in guest memory.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::acpi {

// ---------------------------------------------------------------------------------------------
// Root System Description Pointer (ACPI 2.0+ form). Must be 16-byte aligned.
// ---------------------------------------------------------------------------------------------
inline constexpr char kRsdpSignature[8] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};
inline constexpr uint8_t kRsdpRevision = 2;        // 2 = ACPI 2.0+, the first with an XSDT
inline constexpr uint32_t kRsdpV1Length = 20;      // the ACPI 1.0 part, covered by `checksum`
inline constexpr uint64_t kRsdpAlignment = 16;

struct [[gnu::packed]] Rsdp {
    char signature[8];
    uint8_t checksum;           // bytes 0..19 sum to 0
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;      // 0: hvkvm writes no RSDT
    uint32_t length;            // sizeof(Rsdp)
    uint64_t xsdt_address;
    uint8_t extended_checksum;  // all `length` bytes sum to 0
    uint8_t reserved[3];
};
static_assert(offsetof(Rsdp, signature) == 0);
static_assert(offsetof(Rsdp, checksum) == 8);
static_assert(offsetof(Rsdp, oem_id) == 9);
static_assert(offsetof(Rsdp, revision) == 15);
static_assert(offsetof(Rsdp, rsdt_address) == 16);
static_assert(offsetof(Rsdp, length) == 20);
static_assert(offsetof(Rsdp, xsdt_address) == 24);
static_assert(offsetof(Rsdp, extended_checksum) == 32);
static_assert(offsetof(Rsdp, reserved) == 33);
static_assert(sizeof(Rsdp) == 36);

// ---------------------------------------------------------------------------------------------
// System description table header, at the start of every table below.
// ---------------------------------------------------------------------------------------------
struct [[gnu::packed]] TableHeader {
    char signature[4];
    uint32_t length;     // of the whole table, header included
    uint8_t revision;
    uint8_t checksum;    // all `length` bytes sum to 0
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
static_assert(offsetof(TableHeader, signature) == 0);
static_assert(offsetof(TableHeader, length) == 4);
static_assert(offsetof(TableHeader, revision) == 8);
static_assert(offsetof(TableHeader, checksum) == 9);
static_assert(offsetof(TableHeader, oem_id) == 10);
static_assert(offsetof(TableHeader, oem_table_id) == 16);
static_assert(offsetof(TableHeader, oem_revision) == 24);
static_assert(offsetof(TableHeader, creator_id) == 28);
static_assert(offsetof(TableHeader, creator_revision) == 32);
static_assert(sizeof(TableHeader) == 36);

// Entries of a table with subtables (MADT, SRAT) start with a type and their own length.
struct [[gnu::packed]] SubtableHeader {
    uint8_t type;
    uint8_t length;
};
static_assert(sizeof(SubtableHeader) == 2);

// ---------------------------------------------------------------------------------------------
// XSDT: the header, then 64-bit physical addresses of the other tables.
// ---------------------------------------------------------------------------------------------
inline constexpr char kXsdtSignature[4] = {'X', 'S', 'D', 'T'};
inline constexpr uint8_t kXsdtRevision = 1;
inline constexpr uint32_t kXsdtEntrySize = 8;

// ---------------------------------------------------------------------------------------------
// MADT ("APIC"): interrupt controllers.
// ---------------------------------------------------------------------------------------------
inline constexpr char kMadtSignature[4] = {'A', 'P', 'I', 'C'};
inline constexpr uint8_t kMadtRevision = 5;     // ACPI 6.3
inline constexpr uint8_t kMadtMinRevision = 3;  // ACPI 4.0: the first with x2APIC entries
inline constexpr uint32_t kMadtPcAtCompatible = 1u << 0;  // flags: dual 8259 PICs present

struct [[gnu::packed]] MadtHeader {
    TableHeader header;
    uint32_t local_apic_address;
    uint32_t flags;
};
static_assert(offsetof(MadtHeader, local_apic_address) == 36);
static_assert(offsetof(MadtHeader, flags) == 40);
static_assert(sizeof(MadtHeader) == 44);

enum MadtType : uint8_t {
    kMadtLocalApic = 0,
    kMadtIoApic = 1,
    kMadtInterruptOverride = 2,
    kMadtLocalApicNmi = 4,
    kMadtLocalX2apic = 9,
    kMadtLocalX2apicNmi = 10,
};

inline constexpr uint32_t kProcessorEnabled = 1u << 0;        // MADT and SRAT processor flags
inline constexpr uint32_t kProcessorOnlineCapable = 1u << 1;  // MADT: may be enabled later
inline constexpr uint8_t kAllProcessorsUid8 = 0xff;           // NMI entries: every processor
inline constexpr uint32_t kAllProcessorsUid32 = 0xffffffffu;

struct [[gnu::packed]] MadtLocalApic {
    SubtableHeader header;  // kMadtLocalApic, 8
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;
};
static_assert(offsetof(MadtLocalApic, processor_uid) == 2);
static_assert(offsetof(MadtLocalApic, apic_id) == 3);
static_assert(offsetof(MadtLocalApic, flags) == 4);
static_assert(sizeof(MadtLocalApic) == 8);

struct [[gnu::packed]] MadtIoApic {
    SubtableHeader header;  // kMadtIoApic, 12
    uint8_t io_apic_id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
};
static_assert(offsetof(MadtIoApic, io_apic_id) == 2);
static_assert(offsetof(MadtIoApic, reserved) == 3);
static_assert(offsetof(MadtIoApic, address) == 4);
static_assert(offsetof(MadtIoApic, gsi_base) == 8);
static_assert(sizeof(MadtIoApic) == 12);

// MPS INTI flags of overrides and NMI entries: polarity in bits 0-1, trigger mode in bits 2-3;
// 0 = "conforms to the bus", 2 is reserved in both fields.
inline constexpr uint16_t kIntiPolarityMask = 0x3;
inline constexpr uint16_t kIntiTriggerMask = 0xc;
inline constexpr uint16_t kIntiTriggerShift = 2;
inline constexpr uint16_t kIntiReserved = 2;
inline constexpr uint8_t kIsaBus = 0;

struct [[gnu::packed]] MadtInterruptOverride {
    SubtableHeader header;  // kMadtInterruptOverride, 10
    uint8_t bus;            // 0 = ISA
    uint8_t source_irq;
    uint32_t gsi;
    uint16_t flags;         // MPS INTI flags
};
static_assert(offsetof(MadtInterruptOverride, bus) == 2);
static_assert(offsetof(MadtInterruptOverride, source_irq) == 3);
static_assert(offsetof(MadtInterruptOverride, gsi) == 4);
static_assert(offsetof(MadtInterruptOverride, flags) == 8);
static_assert(sizeof(MadtInterruptOverride) == 10);

struct [[gnu::packed]] MadtLocalApicNmi {
    SubtableHeader header;  // kMadtLocalApicNmi, 6
    uint8_t processor_uid;  // kAllProcessorsUid8 for all
    uint16_t flags;         // MPS INTI flags
    uint8_t lint;           // LINT0 or LINT1
};
static_assert(offsetof(MadtLocalApicNmi, processor_uid) == 2);
static_assert(offsetof(MadtLocalApicNmi, flags) == 3);
static_assert(offsetof(MadtLocalApicNmi, lint) == 5);
static_assert(sizeof(MadtLocalApicNmi) == 6);

struct [[gnu::packed]] MadtLocalX2apic {
    SubtableHeader header;  // kMadtLocalX2apic, 16
    uint16_t reserved;
    uint32_t x2apic_id;
    uint32_t flags;
    uint32_t processor_uid;
};
static_assert(offsetof(MadtLocalX2apic, reserved) == 2);
static_assert(offsetof(MadtLocalX2apic, x2apic_id) == 4);
static_assert(offsetof(MadtLocalX2apic, flags) == 8);
static_assert(offsetof(MadtLocalX2apic, processor_uid) == 12);
static_assert(sizeof(MadtLocalX2apic) == 16);

struct [[gnu::packed]] MadtLocalX2apicNmi {
    SubtableHeader header;  // kMadtLocalX2apicNmi, 12
    uint16_t flags;         // MPS INTI flags
    uint32_t processor_uid; // kAllProcessorsUid32 for all
    uint8_t lint;
    uint8_t reserved[3];
};
static_assert(offsetof(MadtLocalX2apicNmi, flags) == 2);
static_assert(offsetof(MadtLocalX2apicNmi, processor_uid) == 4);
static_assert(offsetof(MadtLocalX2apicNmi, lint) == 8);
static_assert(offsetof(MadtLocalX2apicNmi, reserved) == 9);
static_assert(sizeof(MadtLocalX2apicNmi) == 12);

// ---------------------------------------------------------------------------------------------
// SRAT: which proximity domain (NUMA node) each processor and memory range belongs to.
// ---------------------------------------------------------------------------------------------
inline constexpr char kSratSignature[4] = {'S', 'R', 'A', 'T'};
inline constexpr uint8_t kSratRevision = 3;     // ACPI 4.0+: x2APIC affinity, 32-bit domains
inline constexpr uint8_t kSratMinRevision = 3;
inline constexpr uint32_t kSratTableRevision = 1;  // the "reserved, must be 1" field

struct [[gnu::packed]] SratHeader {
    TableHeader header;
    uint32_t table_revision;  // kSratTableRevision, for backward compatibility
    uint64_t reserved;
};
static_assert(offsetof(SratHeader, table_revision) == 36);
static_assert(offsetof(SratHeader, reserved) == 40);
static_assert(sizeof(SratHeader) == 48);

enum SratType : uint8_t {
    kSratLocalApicAffinity = 0,
    kSratMemoryAffinity = 1,
    kSratLocalX2apicAffinity = 2,
};

inline constexpr uint32_t kMemoryEnabled = 1u << 0;
inline constexpr uint32_t kMemoryHotPluggable = 1u << 1;
inline constexpr uint32_t kMemoryNonVolatile = 1u << 2;

struct [[gnu::packed]] SratLocalApicAffinity {
    SubtableHeader header;       // kSratLocalApicAffinity, 16
    uint8_t proximity_domain_low;
    uint8_t apic_id;
    uint32_t flags;              // kProcessorEnabled
    uint8_t local_sapic_eid;
    uint8_t proximity_domain_high[3];
    uint32_t clock_domain;
};
static_assert(offsetof(SratLocalApicAffinity, proximity_domain_low) == 2);
static_assert(offsetof(SratLocalApicAffinity, apic_id) == 3);
static_assert(offsetof(SratLocalApicAffinity, flags) == 4);
static_assert(offsetof(SratLocalApicAffinity, local_sapic_eid) == 8);
static_assert(offsetof(SratLocalApicAffinity, proximity_domain_high) == 9);
static_assert(offsetof(SratLocalApicAffinity, clock_domain) == 12);
static_assert(sizeof(SratLocalApicAffinity) == 16);

struct [[gnu::packed]] SratMemoryAffinity {
    SubtableHeader header;  // kSratMemoryAffinity, 40
    uint32_t proximity_domain;
    uint16_t reserved1;
    uint64_t base;
    uint64_t length;
    uint32_t reserved2;
    uint32_t flags;         // kMemoryEnabled, ...
    uint64_t reserved3;
};
static_assert(offsetof(SratMemoryAffinity, proximity_domain) == 2);
static_assert(offsetof(SratMemoryAffinity, reserved1) == 6);
static_assert(offsetof(SratMemoryAffinity, base) == 8);
static_assert(offsetof(SratMemoryAffinity, length) == 16);
static_assert(offsetof(SratMemoryAffinity, reserved2) == 24);
static_assert(offsetof(SratMemoryAffinity, flags) == 28);
static_assert(offsetof(SratMemoryAffinity, reserved3) == 32);
static_assert(sizeof(SratMemoryAffinity) == 40);

struct [[gnu::packed]] SratLocalX2apicAffinity {
    SubtableHeader header;  // kSratLocalX2apicAffinity, 24
    uint16_t reserved1;
    uint32_t proximity_domain;
    uint32_t x2apic_id;
    uint32_t flags;         // kProcessorEnabled
    uint32_t clock_domain;
    uint32_t reserved2;
};
static_assert(offsetof(SratLocalX2apicAffinity, reserved1) == 2);
static_assert(offsetof(SratLocalX2apicAffinity, proximity_domain) == 4);
static_assert(offsetof(SratLocalX2apicAffinity, x2apic_id) == 8);
static_assert(offsetof(SratLocalX2apicAffinity, flags) == 12);
static_assert(offsetof(SratLocalX2apicAffinity, clock_domain) == 16);
static_assert(offsetof(SratLocalX2apicAffinity, reserved2) == 20);
static_assert(sizeof(SratLocalX2apicAffinity) == 24);

// ---------------------------------------------------------------------------------------------
// SLIT: the header, the number of localities N, then N x N one-byte distances, row-major
// (entry [i][j] at offset sizeof(SlitHeader) + i * N + j).
// ---------------------------------------------------------------------------------------------
inline constexpr char kSlitSignature[4] = {'S', 'L', 'I', 'T'};
inline constexpr uint8_t kSlitRevision = 1;

struct [[gnu::packed]] SlitHeader {
    TableHeader header;
    uint64_t locality_count;
};
static_assert(offsetof(SlitHeader, locality_count) == 36);
static_assert(sizeof(SlitHeader) == 44);

// The sum of `bytes` modulo 256: 0 for a table with a correct checksum.
constexpr uint8_t byte_sum(const uint8_t* bytes, size_t length) {
    uint8_t sum = 0;
    for (size_t i = 0; i < length; ++i) sum = static_cast<uint8_t>(sum + bytes[i]);
    return sum;
}

// The value for a checksum field (currently 0) that makes `bytes` sum to 0.
constexpr uint8_t checksum_byte(const uint8_t* bytes, size_t length) {
    return static_cast<uint8_t>(0u - byte_sum(bytes, length));
}

}  // namespace hvkvm::acpi
