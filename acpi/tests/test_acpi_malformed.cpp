// The parser refuses every malformed table with a message naming the table, entry and rule;
// each limit is tried at the exact fit (accepted) and one past (refused).
#include <catch2/catch.hpp>

#include "acpi_test_support.h"

namespace hvkvm::acpi::test {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;
using host::AcpiImage;
using host::ApicEntries;
using host::MachineDescription;

AcpiImage write(const MachineDescription& machine) { return host::write_acpi_tables(machine, kImageGpa); }
AcpiImage good_image() { return write(uniform_machine(2, 2)); }

// Offset of the first MADT subtable of `type`.
uint64_t madt_entry_offset(const AcpiImage& image, uint8_t type) {
    const host::TableLocation& madt = image.table("APIC");
    for (uint64_t offset = sizeof(MadtHeader); offset < madt.length;) {
        const auto header = read<SubtableHeader>(image, "APIC", offset);
        if (header.type == type) return offset;
        offset += header.length;
    }
    FAIL("no MADT entry of type " << int(type));
    return 0;
}

TEST_CASE("malformed: the image the tests start from is valid") {
    CHECK(parse_error(good_image()).empty());
    CHECK(parse_error(write(uniform_machine(2, 2, ApicEntries::kX2Apic))).empty());
}

// --- RSDP --------------------------------------------------------------------------------------

TEST_CASE("malformed RSDP") {
    AcpiImage image = good_image();
    ParsedTables out;
    SECTION("not 16-byte aligned") {
        CHECK_THAT(parse_acpi_tables(image.window(), kImageGpa + 16 + 4, out).message(),
                   Equals("RSDP at 0x9a014 is not 16-byte aligned"));
    }
    SECTION("outside the window") {
        CHECK_THAT(parse_acpi_tables(image.window(), kImageGpa - 16, out).message(),
                   Equals("RSDP at 0x99ff0 is not inside the ACPI window"));
        TableWindow short_window{image.bytes.data(), kImageGpa, sizeof(Rsdp) - 1};
        CHECK_THAT(parse_acpi_tables(short_window, kImageGpa, out).message(), Contains("not inside the ACPI window"));
    }
    SECTION("bad signature") {
        patch(image, "RSD PTR ", 0, 'X');
        CHECK_THAT(parse_error(image), Equals("RSDP: bad signature"));
    }
    SECTION("bad checksums") {
        image.bytes[offsetof(Rsdp, oem_id)] ^= 1;
        CHECK_THAT(parse_error(image), Equals("RSDP: checksum of the first 20 bytes is wrong"));
        fix_checksum(image, "RSD PTR ");
        image.bytes[offsetof(Rsdp, xsdt_address) + 7] ^= 1;
        CHECK_THAT(parse_error(image), Equals("RSDP: extended checksum is wrong"));
    }
    SECTION("revision 1 has no XSDT") {
        patch(image, "RSD PTR ", offsetof(Rsdp, revision), uint8_t{1});
        CHECK_THAT(parse_error(image), Equals("RSDP: revision 1; ACPI 2.0+ (revision 2) is needed for an XSDT"));
    }
    SECTION("length") {
        patch(image, "RSD PTR ", offsetof(Rsdp, length), uint32_t{35});
        CHECK_THAT(parse_error(image), Equals("RSDP: length 35 is below 36 or runs past the ACPI window"));
        patch(image, "RSD PTR ", offsetof(Rsdp, length), uint32_t(image.bytes.size() + 1));
        CHECK_THAT(parse_error(image), Contains("runs past the ACPI window"));
    }
}

// --- XSDT and table headers ---------------------------------------------------------------------

TEST_CASE("malformed XSDT") {
    AcpiImage image = good_image();
    SECTION("address outside the window") {
        patch(image, "RSD PTR ", offsetof(Rsdp, xsdt_address), uint64_t{0x1000});
        CHECK_THAT(parse_error(image), Equals("XSDT: header at 0x1000 is not inside the ACPI window"));
    }
    SECTION("wrong signature") {
        patch(image, "XSDT", 0, 'R');
        CHECK_THAT(parse_error(image), Equals("XSDT: signature is 'RSDT'"));
    }
    SECTION("bad checksum") {
        image.bytes[image.table("XSDT").offset + offsetof(TableHeader, oem_revision)] ^= 0x40;
        CHECK_THAT(parse_error(image), Equals("XSDT: 'XSDT' checksum is wrong"));
    }
    SECTION("revision 0") {
        patch(image, "XSDT", offsetof(TableHeader, revision), uint8_t{0});
        CHECK_THAT(parse_error(image), Equals("XSDT: revision 0; at least 1 is needed"));
    }
    SECTION("a partial entry") {
        patch(image, "XSDT", offsetof(TableHeader, length), uint32_t{sizeof(TableHeader) + 3 * 8 - 1});
        CHECK_THAT(parse_error(image), Equals("XSDT: length 59 leaves a partial entry"));
    }
    SECTION("an entry pointing outside the window") {
        replace_xsdt(image, {table_gpa(image, "APIC"), 0xdead0000, table_gpa(image, "SLIT")});
        CHECK_THAT(parse_error(image), Equals("XSDT entry 1: header at 0xdead0000 is not inside the ACPI window"));
    }
    SECTION("a missing table") {
        replace_xsdt(image, {table_gpa(image, "APIC"), table_gpa(image, "SRAT")});
        CHECK_THAT(parse_error(image), Equals("XSDT lists no SLIT"));
        replace_xsdt(image, {table_gpa(image, "SLIT"), table_gpa(image, "SRAT")});
        CHECK_THAT(parse_error(image), Equals("XSDT lists no MADT"));
    }
    SECTION("a table listed twice") {
        replace_xsdt(image, {table_gpa(image, "APIC"), table_gpa(image, "SRAT"), table_gpa(image, "SLIT"),
                             table_gpa(image, "APIC")});
        CHECK_THAT(parse_error(image), Equals("XSDT entry 3: a second MADT"));
    }
    SECTION("entry count at the exact fit and one past; other tables are checked, then ignored") {
        std::vector<uint64_t> entries{table_gpa(image, "APIC"), table_gpa(image, "SRAT"), table_gpa(image, "SLIT")};
        const uint64_t other = append_table(image, {'O', 'E', 'M', '1'}, 1, {1, 2, 3});
        while (entries.size() < kMaxXsdtEntries) entries.push_back(other);
        replace_xsdt(image, entries);
        CHECK(parse_error(image).empty());
        entries.push_back(other);
        replace_xsdt(image, entries);
        CHECK_THAT(parse_error(image), Equals("XSDT: 17 entries; at most 16 are supported"));
    }
    SECTION("an ignored table with a bad checksum is still refused") {
        const uint64_t other = append_table(image, {'O', 'E', 'M', '1'}, 1, {1, 2, 3});
        image.bytes[other - image.gpa + sizeof(TableHeader)] = 9;
        replace_xsdt(image, {table_gpa(image, "APIC"), table_gpa(image, "SRAT"), table_gpa(image, "SLIT"), other});
        CHECK_THAT(parse_error(image), Equals("XSDT entry 3: 'OEM1' checksum is wrong"));
    }
}

TEST_CASE("malformed table headers: truncated, past the window end, too old") {
    AcpiImage image = good_image();
    SECTION("a table ending exactly at the window's end is accepted, one byte more is not") {
        // The SLIT is the last table, ending at the image's end.
        REQUIRE(image.table("SLIT").offset + image.table("SLIT").length == image.bytes.size());
        CHECK(parse_error(image).empty());
        TableWindow short_window{image.bytes.data(), image.gpa, image.bytes.size() - 1};
        ParsedTables out;
        CHECK_THAT(parse_acpi_tables(short_window, image.rsdp_gpa(), out).message(),
                   Contains("XSDT entry 2: 'SLIT' at 0x9a"));
        CHECK_THAT(parse_acpi_tables(short_window, image.rsdp_gpa(), out).message(),
                   Contains("length 48 runs past the ACPI window"));
    }
    SECTION("a length shorter than a table header") {
        patch(image, "SRAT", offsetof(TableHeader, length), uint32_t{35});
        CHECK_THAT(parse_error(image), Equals("XSDT entry 1: 'SRAT' length 35 is shorter than a table header"));
    }
    SECTION("a length shorter than the table's own header") {
        patch(image, "APIC", offsetof(TableHeader, length), uint32_t{sizeof(MadtHeader) - 1});
        CHECK_THAT(parse_error(image), Equals("MADT: length 43 is shorter than its 44-byte header"));
    }
    SECTION("minimum revisions: exact fit accepted, one below refused") {
        patch(image, "APIC", offsetof(TableHeader, revision), kMadtMinRevision);
        patch(image, "SRAT", offsetof(TableHeader, revision), kSratMinRevision);
        patch(image, "SLIT", offsetof(TableHeader, revision), kSlitRevision);
        CHECK(parse_error(image).empty());
        patch(image, "APIC", offsetof(TableHeader, revision), uint8_t(kMadtMinRevision - 1));
        CHECK_THAT(parse_error(image), Equals("MADT: revision 2; at least 3 is needed"));
        patch(image, "APIC", offsetof(TableHeader, revision), kMadtRevision);
        patch(image, "SRAT", offsetof(TableHeader, revision), uint8_t(kSratMinRevision - 1));
        CHECK_THAT(parse_error(image), Equals("SRAT: revision 2; at least 3 is needed"));
        patch(image, "SRAT", offsetof(TableHeader, revision), kSratRevision);
        patch(image, "SLIT", offsetof(TableHeader, revision), uint8_t{0});
        CHECK_THAT(parse_error(image), Equals("SLIT: revision 0; at least 1 is needed"));
    }
    SECTION("a bad checksum in each table") {
        for (const char* signature : {"APIC", "SRAT", "SLIT"}) {
            AcpiImage broken = good_image();
            broken.bytes[broken.table(signature).offset + broken.table(signature).length - 1] ^= 0x10;
            CHECK_THAT(parse_error(broken), Contains(std::string("'") + signature + "' checksum is wrong"));
        }
    }
}

// --- MADT -----------------------------------------------------------------------------------------

TEST_CASE("malformed MADT entries: lengths") {
    AcpiImage image = good_image();
    const uint64_t io_apic = madt_entry_offset(image, kMadtIoApic);
    SECTION("an entry running past the table end") {
        const uint64_t last = madt_entry_offset(image, kMadtLocalApicNmi);
        patch(image, "APIC", last + 1, uint8_t{sizeof(MadtLocalApicNmi) + 1});
        CHECK_THAT(parse_error(image), Equals("MADT entry 6: length 7 at offset 98 runs past the table end (104)"));
    }
    SECTION("a length too short to step over") {
        patch(image, "APIC", io_apic + 1, uint8_t{1});
        CHECK_THAT(parse_error(image), Equals("MADT entry 4: length 1 is shorter than an entry header"));
    }
    SECTION("a length that does not match the entry type") {
        patch(image, "APIC", io_apic + 1, uint8_t{10});
        CHECK_THAT(parse_error(image), Equals("MADT entry 4: type 1 has length 10, expected 12"));
    }
    SECTION("a header cut by the table end") {
        patch(image, "APIC", offsetof(TableHeader, length), uint32_t(image.table("APIC").length - 5));
        CHECK_THAT(parse_error(image), Equals("MADT entry 6: header at offset 98 runs past the table end"));
    }
    SECTION("unknown entry types are stepped over") {
        patch(image, "APIC", io_apic, uint8_t{0x7f});
        CHECK(parse_error(image).empty());
    }
}

TEST_CASE("malformed MADT entries: processors") {
    SECTION("vCPU limit at the exact fit and one past") {
        MachineDescription machine = uniform_machine(1, numa::kMaxCpus, ApicEntries::kX2Apic);
        CHECK(parse_error(write(machine)).empty());
        machine.cpus.push_back({numa::kMaxCpus, numa::kMaxCpus, 0});
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 64: APIC ID 64 is beyond the 64 vCPUs supported"));
    }
    SECTION("duplicate APIC ID and UID") {
        MachineDescription machine = uniform_machine(1, 3);
        machine.cpus[2].apic_id = 1;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 2: APIC ID 1 appears twice"));
        machine = uniform_machine(1, 3);
        machine.cpus[2].uid = 0;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 2: processor UID 0 appears twice"));
    }
    SECTION("APIC IDs with a gap") {
        MachineDescription machine = uniform_machine(1, 3);
        machine.cpus[1].apic_id = 3;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT: APIC IDs must be 0..2, and 1 is missing"));
    }
    SECTION("disabled processors are ignored; reserved flag bits are not") {
        AcpiImage image = good_image();
        const uint64_t last_cpu = sizeof(MadtHeader) + 3 * sizeof(MadtLocalApic);
        patch(image, "APIC", last_cpu + offsetof(MadtLocalApic, flags), uint32_t{0});
        CHECK_THAT(parse_error(image), Equals("SRAT entry 3: APIC ID 3 is not an enabled processor in the MADT"));
        patch(image, "APIC", last_cpu + offsetof(MadtLocalApic, flags), uint32_t{0x5});
        CHECK_THAT(parse_error(image), Equals("MADT entry 3: processor flags 0x5 use reserved bits"));
    }
    SECTION("no processor at all") {
        MachineDescription machine = uniform_machine(1, 1);
        machine.cpus[0].in_madt = false;
        machine.cpus[0].in_srat = false;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT lists no enabled processor"));
    }
    SECTION("reserved MADT flags") {
        AcpiImage image = good_image();
        patch(image, "APIC", offsetof(MadtHeader, flags), uint32_t{3});
        CHECK_THAT(parse_error(image), Equals("MADT: flags 0x3 use reserved bits"));
    }
}

TEST_CASE("malformed MADT entries: I/O APICs, overrides, NMIs") {
    SECTION("I/O APIC count at the exact fit and one past") {
        MachineDescription machine = uniform_machine(1, 1);
        CHECK(parse_error(write(machine)).empty());
        machine.io_apics.push_back(IoApic{1, 0xfec01000, 24});
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 2: more than 1 I/O APIC"));
    }
    SECTION("I/O APIC address") {
        MachineDescription machine = uniform_machine(1, 1);
        machine.io_apics[0].address = 0xfec00010;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 1: I/O APIC address 0xfec00010 is not a page address"));
    }
    SECTION("override count at the exact fit (every ISA IRQ) and a sixteenth IRQ one past") {
        MachineDescription machine = uniform_machine(1, 1);
        machine.overrides.clear();
        for (uint8_t irq = 0; irq < kIsaIrqCount; ++irq) machine.overrides.push_back({irq, irq, 0});
        CHECK(parse_error(write(machine)).empty());
        machine.overrides.back().isa_irq = 16;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 17: interrupt override of IRQ 16, beyond the ISA IRQs"));
        machine.overrides.back().isa_irq = 3;
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 17: IRQ 3 is overridden twice"));
    }
    SECTION("override flags and bus") {
        MachineDescription machine = uniform_machine(1, 1);
        machine.overrides[0].flags = 0x2;  // polarity 2 is reserved
        CHECK_THAT(parse_error(write(machine)), Equals("MADT entry 2: interrupt flags 0x2 use reserved values"));
        machine.overrides[0].flags = 0xd;  // active high (1), level (3): fine
        CHECK(parse_error(write(machine)).empty());
        machine.overrides[0].flags = 0x8;  // trigger 2 is reserved
        CHECK_THAT(parse_error(write(machine)), Contains("interrupt flags 0x8 use reserved values"));
        AcpiImage image = write(uniform_machine(1, 1));
        patch(image, "APIC", madt_entry_offset(image, kMadtInterruptOverride) + 2, uint8_t{1});
        CHECK_THAT(parse_error(image), Equals("MADT entry 2: interrupt override on bus 1, not ISA (0)"));
    }
    SECTION("NMI entries, local APIC and x2APIC") {
        for (ApicEntries entries : {ApicEntries::kXApic, ApicEntries::kX2Apic}) {
            AcpiImage image = write(uniform_machine(1, 2, entries));
            const uint8_t type = entries == ApicEntries::kXApic ? kMadtLocalApicNmi : kMadtLocalX2apicNmi;
            const uint64_t nmi = madt_entry_offset(image, type);
            const uint64_t lint = entries == ApicEntries::kXApic ? offsetof(MadtLocalApicNmi, lint) : offsetof(MadtLocalX2apicNmi, lint);
            patch(image, "APIC", nmi + lint, uint8_t{2});
            CHECK_THAT(parse_error(image), Equals("MADT entry 4: NMI on LINT2; a local APIC has LINT0 and LINT1"));
            patch(image, "APIC", nmi + lint, uint8_t{0});
            const uint64_t uid = entries == ApicEntries::kXApic ? offsetof(MadtLocalApicNmi, processor_uid)
                                                                : offsetof(MadtLocalX2apicNmi, processor_uid);
            if (entries == ApicEntries::kXApic) patch(image, "APIC", nmi + uid, uint8_t{1});
            else patch(image, "APIC", nmi + uid, uint32_t{1});
            CHECK(parse_error(image).empty());  // UID 1 is a processor
            if (entries == ApicEntries::kXApic) patch(image, "APIC", nmi + uid, uint8_t{7});
            else patch(image, "APIC", nmi + uid, uint32_t{7});
            CHECK_THAT(parse_error(image), Equals("MADT entry 4: NMI for processor UID 7, which is not an enabled processor"));
        }
    }
}

// --- SRAT -----------------------------------------------------------------------------------------

TEST_CASE("malformed SRAT: processors") {
    SECTION("a CPU in two nodes") {
        for (ApicEntries entries : {ApicEntries::kXApic, ApicEntries::kX2Apic}) {
            MachineDescription machine = uniform_machine(2, 2, entries);
            MachineDescription::Cpu again = machine.cpus[1];
            again.node = 1;
            again.in_madt = false;
            machine.cpus.push_back(again);
            CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 4: APIC ID 1 already has a node (entry 1): a CPU in two nodes"));
        }
    }
    SECTION("a CPU with no node") {
        MachineDescription machine = uniform_machine(2, 2);
        machine.cpus[3].in_srat = false;
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT: no affinity entry for the processor with APIC ID 3"));
    }
    SECTION("a node for a CPU the MADT does not list") {
        MachineDescription machine = uniform_machine(2, 2);
        machine.cpus.push_back({9, 9, 0, false, true});
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 4: APIC ID 9 is not an enabled processor in the MADT"));
    }
    SECTION("a proximity domain beyond the SLIT, for CPUs (both encodings) and memory") {
        for (ApicEntries entries : {ApicEntries::kXApic, ApicEntries::kX2Apic}) {
            MachineDescription machine = uniform_machine(2, 2, entries);
            machine.cpus[0].node = 2;
            CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 0: proximity domain 2 is not in the SLIT (2 localities)"));
            machine.cpus[0].node = 0x10000;  // high bytes of the local APIC entry's domain
            CHECK_THAT(parse_error(write(machine)), Contains("proximity domain 65536 is not in the SLIT"));
        }
        MachineDescription machine = uniform_machine(2, 2);
        machine.memory[1].node = 5;
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 5: proximity domain 5 is not in the SLIT (2 localities)"));
    }
    SECTION("reserved processor affinity flags") {
        AcpiImage image = good_image();
        patch(image, "SRAT", sizeof(SratHeader) + offsetof(SratLocalApicAffinity, flags), uint32_t{3});
        CHECK_THAT(parse_error(image), Equals("SRAT entry 0: processor flags 0x3 use reserved bits"));
    }
    SECTION("the table revision field") {
        AcpiImage image = good_image();
        patch(image, "SRAT", offsetof(SratHeader, table_revision), uint32_t{0});
        CHECK_THAT(parse_error(image), Equals("SRAT: table revision field is 0, must be 1"));
    }
}

TEST_CASE("malformed SRAT: memory") {
    SECTION("memory range limit at the exact fit and one past") {
        MachineDescription machine = uniform_machine(2, 1);
        machine.memory.clear();
        for (uint32_t i = 0; i < numa::kMaxMemoryRanges; ++i) machine.memory.push_back({uint64_t{i + 1} << 20, 1 << 20, i % 2});
        CHECK(parse_error(write(machine)).empty());
        machine.memory.push_back({uint64_t{numa::kMaxMemoryRanges + 1} << 20, 1 << 20, 0});
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 34: more than 32 memory ranges"));
    }
    SECTION("overlapping ranges name both entries; touching ranges are fine") {
        MachineDescription machine = uniform_machine(3, 1);
        machine.memory[2].base = machine.memory[1].base + machine.memory[1].size;
        CHECK(parse_error(write(machine)).empty());
        machine.memory[2].base -= numa::kMemoryGranule;
        CHECK_THAT(parse_error(write(machine)),
                   Equals("SRAT entry 5: memory [0x80ff000, 0xc0ff000) overlaps entry 4's [0x4100000, 0x8100000)"));
    }
    SECTION("empty, unaligned and wrapping ranges") {
        MachineDescription machine = uniform_machine(2, 1);
        machine.memory[1].size = 0;
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 3: memory range at 0x4100000 is empty"));
        machine.memory[1].size = 0x1800;
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 3: memory [0x4100000, +0x1800) is not 4 KiB-aligned"));
        machine.memory[1] = {0xfffffffffffff000, 0x2000, 1};
        CHECK_THAT(parse_error(write(machine)), Equals("SRAT entry 3: memory at 0xfffffffffffff000 wraps past the end of the address space"));
    }
    SECTION("disabled ranges are ignored; hot-pluggable and non-volatile ones are refused") {
        MachineDescription machine = uniform_machine(2, 1);
        machine.memory.push_back({machine.memory[0].base, machine.memory[0].size, 0, 0});  // overlaps, but disabled
        CHECK(parse_error(write(machine)).empty());
        machine.memory.back().flags = kMemoryEnabled | kMemoryHotPluggable;
        CHECK_THAT(parse_error(write(machine)),
                   Equals("SRAT entry 4: memory flags 0x3: hot-pluggable or non-volatile memory is not supported"));
    }
}

// --- SLIT -----------------------------------------------------------------------------------------

TEST_CASE("malformed SLIT") {
    SECTION("locality limit at the exact fit and one past") {
        MachineDescription machine = uniform_machine(numa::kMaxNodes, 1);
        CHECK(parse_error(write(machine)).empty());
        machine.locality_count = numa::kMaxNodes + 1;
        machine.distances.assign(machine.locality_count * machine.locality_count, 20);
        CHECK_THAT(parse_error(write(machine)), Equals("SLIT: 17 localities; 1..16 are supported"));
        machine.locality_count = 0;
        machine.distances.clear();
        CHECK_THAT(parse_error(write(machine)), Equals("SLIT: 0 localities; 1..16 are supported"));
    }
    SECTION("a length that does not match the locality count") {
        MachineDescription machine = uniform_machine(2, 1);
        machine.distances.push_back(20);
        CHECK_THAT(parse_error(write(machine)), Equals("SLIT: length 49, but 2 localities need 48"));
    }
    SECTION("distance rules name the entry") {
        MachineDescription machine = uniform_machine(3, 1);
        machine.distances[1 * 3 + 1] = 11;
        CHECK_THAT(parse_error(write(machine)), Equals("SLIT entry [1][1] = 11: must be 10, the distance from a node to itself"));
        machine = uniform_machine(3, 1);
        machine.distances[2 * 3 + 0] = 10;
        CHECK_THAT(parse_error(write(machine)), Contains("SLIT entry [2][0] = 10: 10 means local"));
        machine.distances[2 * 3 + 0] = 255;  // unreachable one way: allowed
        CHECK(parse_error(write(machine)).empty());
    }
    SECTION("a locality with neither CPUs nor memory, so not known to the SRAT") {
        MachineDescription machine = uniform_machine(3, 1);
        machine.cpus.pop_back();
        machine.memory.pop_back();
        CHECK_THAT(parse_error(write(machine)), Equals("SLIT locality 2 has no CPUs or memory in the SRAT"));
    }
}

}  // namespace
}  // namespace hvkvm::acpi::test
