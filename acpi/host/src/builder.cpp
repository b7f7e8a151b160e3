#include "hvkvm/acpi/host/builder.h"

#include <cstring>
#include <stdexcept>
#include <string>

namespace hvkvm::acpi::host {
namespace {

constexpr char kOemId[6] = {'H', 'V', 'K', 'V', 'M', ' '};
constexpr char kOemTableId[8] = {'H', 'V', 'K', 'V', 'M', 'T', 'B', 'L'};
constexpr char kCreatorId[4] = {'H', 'V', 'K', 'V'};
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;
constexpr uint64_t kTableAlignment = 16;

constexpr uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

// Every limit reached, with the larger x2APIC entries: what kMaxAcpiImageBytes must hold.
constexpr uint64_t kLargestMadt = sizeof(MadtHeader) + numa::kMaxCpus * sizeof(MadtLocalX2apic) +
                                  kMaxIoApics * sizeof(MadtIoApic) + kMaxInterruptOverrides * sizeof(MadtInterruptOverride) +
                                  sizeof(MadtLocalX2apicNmi);
constexpr uint64_t kLargestSrat = sizeof(SratHeader) + numa::kMaxCpus * sizeof(SratLocalX2apicAffinity) +
                                  numa::kMaxMemoryRanges * sizeof(SratMemoryAffinity);
constexpr uint64_t kLargestSlit = sizeof(SlitHeader) + numa::kMaxNodes * numa::kMaxNodes;
constexpr uint64_t kLargestXsdt = sizeof(TableHeader) + 3 * kXsdtEntrySize;
static_assert(align_up(sizeof(Rsdp), kTableAlignment) + align_up(kLargestXsdt, kTableAlignment) +
                  align_up(kLargestMadt, kTableAlignment) + align_up(kLargestSrat, kTableAlignment) +
                  align_up(kLargestSlit, kTableAlignment) <=
              kMaxAcpiImageBytes);

[[noreturn]] void refuse(const std::string& what) { throw std::invalid_argument("ACPI tables: " + what); }

// One table: the header is filled in (length, checksum) when the table is finished.
class TableWriter {
public:
    TableWriter(const char (&signature)[4], uint8_t revision) {
        TableHeader header{};
        std::memcpy(header.signature, signature, sizeof(header.signature));
        header.revision = revision;
        std::memcpy(header.oem_id, kOemId, sizeof(kOemId));
        std::memcpy(header.oem_table_id, kOemTableId, sizeof(kOemTableId));
        header.oem_revision = kOemRevision;
        std::memcpy(header.creator_id, kCreatorId, sizeof(kCreatorId));
        header.creator_revision = kCreatorRevision;
        append(header);
    }

    template <typename T>
    void append(const T& value) {
        // resize + memcpy rather than insert(): GCC 12 warns (-Wstringop-overflow, wrongly) about
        // inserting into the empty vector in the constructor.
        const size_t at = bytes_.size();
        bytes_.resize(at + sizeof(T));
        std::memcpy(bytes_.data() + at, &value, sizeof(T));
    }
    void append_bytes(const std::vector<uint8_t>& values) { bytes_.insert(bytes_.end(), values.begin(), values.end()); }

    std::vector<uint8_t> finish() && {
        const uint32_t length = static_cast<uint32_t>(bytes_.size());
        std::memcpy(bytes_.data() + offsetof(TableHeader, length), &length, sizeof(length));
        bytes_[offsetof(TableHeader, checksum)] = checksum_byte(bytes_.data(), bytes_.size());
        return std::move(bytes_);
    }

private:
    std::vector<uint8_t> bytes_;
};

uint8_t as_byte(uint32_t value, const char* what) {
    if (value > 0xff) refuse(std::string(what) + " " + std::to_string(value) + " needs x2APIC entries");
    return static_cast<uint8_t>(value);
}

void append_madt_processor(TableWriter& madt, const MachineDescription& machine, const MachineDescription::Cpu& cpu) {
    if (machine.apic_entries == ApicEntries::kXApic) {
        MadtLocalApic entry{{kMadtLocalApic, sizeof(MadtLocalApic)}, as_byte(cpu.uid, "processor UID"),
                            as_byte(cpu.apic_id, "APIC ID"), kProcessorEnabled};
        madt.append(entry);
    } else {
        madt.append(MadtLocalX2apic{{kMadtLocalX2apic, sizeof(MadtLocalX2apic)}, 0, cpu.apic_id, kProcessorEnabled, cpu.uid});
    }
}

std::vector<uint8_t> write_madt(const MachineDescription& machine) {
    TableWriter madt(kMadtSignature, kMadtRevision);
    madt.append(uint32_t{machine.local_apic_address});
    madt.append(uint32_t{machine.pc_at_compatible ? kMadtPcAtCompatible : 0});
    for (const auto& cpu : machine.cpus)
        if (cpu.in_madt) append_madt_processor(madt, machine, cpu);
    for (const IoApic& io_apic : machine.io_apics)
        madt.append(MadtIoApic{{kMadtIoApic, sizeof(MadtIoApic)}, as_byte(io_apic.id, "I/O APIC ID"), 0, io_apic.address,
                               io_apic.gsi_base});
    for (const InterruptOverride& override : machine.overrides)
        madt.append(MadtInterruptOverride{{kMadtInterruptOverride, sizeof(MadtInterruptOverride)}, kIsaBus, override.isa_irq,
                                          override.gsi, override.flags});
    if (machine.nmi_on_lint1) {
        if (machine.apic_entries == ApicEntries::kXApic)
            madt.append(MadtLocalApicNmi{{kMadtLocalApicNmi, sizeof(MadtLocalApicNmi)}, kAllProcessorsUid8, 0, 1});
        else
            madt.append(MadtLocalX2apicNmi{{kMadtLocalX2apicNmi, sizeof(MadtLocalX2apicNmi)}, 0, kAllProcessorsUid32, 1, {}});
    }
    return std::move(madt).finish();
}

void append_srat_processor(TableWriter& srat, const MachineDescription& machine, const MachineDescription::Cpu& cpu) {
    if (machine.apic_entries == ApicEntries::kXApic) {
        SratLocalApicAffinity entry{};
        entry.header = {kSratLocalApicAffinity, sizeof(SratLocalApicAffinity)};
        entry.proximity_domain_low = static_cast<uint8_t>(cpu.node);
        entry.apic_id = as_byte(cpu.apic_id, "APIC ID");
        entry.flags = kProcessorEnabled;
        for (int i = 0; i < 3; ++i) entry.proximity_domain_high[i] = static_cast<uint8_t>(cpu.node >> (8 * (i + 1)));
        srat.append(entry);
    } else {
        SratLocalX2apicAffinity entry{};
        entry.header = {kSratLocalX2apicAffinity, sizeof(SratLocalX2apicAffinity)};
        entry.proximity_domain = cpu.node;
        entry.x2apic_id = cpu.apic_id;
        entry.flags = kProcessorEnabled;
        srat.append(entry);
    }
}

std::vector<uint8_t> write_srat(const MachineDescription& machine) {
    TableWriter srat(kSratSignature, kSratRevision);
    srat.append(uint32_t{kSratTableRevision});
    srat.append(uint64_t{0});
    for (const auto& cpu : machine.cpus)
        if (cpu.in_srat) append_srat_processor(srat, machine, cpu);
    for (const auto& memory : machine.memory) {
        SratMemoryAffinity entry{};
        entry.header = {kSratMemoryAffinity, sizeof(SratMemoryAffinity)};
        entry.proximity_domain = memory.node;
        entry.base = memory.base;
        entry.length = memory.size;
        entry.flags = memory.flags;
        srat.append(entry);
    }
    return std::move(srat).finish();
}

std::vector<uint8_t> write_slit(const MachineDescription& machine) {
    if (machine.distances.size() > 1 << 16) refuse("more than 65536 SLIT entries");
    TableWriter slit(kSlitSignature, kSlitRevision);
    slit.append(uint64_t{machine.locality_count});
    slit.append_bytes(machine.distances);
    return std::move(slit).finish();
}

Rsdp make_rsdp(uint64_t xsdt_gpa) {
    Rsdp rsdp{};
    std::memcpy(rsdp.signature, kRsdpSignature, sizeof(rsdp.signature));
    std::memcpy(rsdp.oem_id, kOemId, sizeof(rsdp.oem_id));
    rsdp.revision = kRsdpRevision;
    rsdp.length = sizeof(Rsdp);
    rsdp.xsdt_address = xsdt_gpa;
    rsdp.checksum = checksum_byte(reinterpret_cast<const uint8_t*>(&rsdp), kRsdpV1Length);
    rsdp.extended_checksum = checksum_byte(reinterpret_cast<const uint8_t*>(&rsdp), sizeof(rsdp));
    return rsdp;
}

void place(AcpiImage& image, std::string_view signature, uint64_t offset, const uint8_t* bytes, size_t length) {
    image.bytes.resize(offset);  // zero padding up to the table
    image.bytes.insert(image.bytes.end(), bytes, bytes + length);
    image.tables.push_back(TableLocation{signature, offset, static_cast<uint32_t>(length)});
}

}  // namespace

const TableLocation& AcpiImage::table(std::string_view signature) const {
    for (const TableLocation& location : tables)
        if (location.signature == signature) return location;
    refuse("no table " + std::string(signature) + " in the image");
}

MachineDescription describe_machine(const numa::Topology& topology, ApicEntries apic_entries) {
    MachineDescription machine;
    machine.apic_entries = apic_entries;
    for (uint32_t cpu = 0; cpu < numa::kMaxCpus; ++cpu) {
        uint32_t node = topology.node_of_cpu(cpu);
        if (node != numa::kNoNode) machine.cpus.push_back({cpu, cpu, node});
    }
    for (uint32_t i = 0; i < topology.memory_range_count; ++i) {
        const numa::MemoryRange& range = topology.memory_ranges[i];
        machine.memory.push_back({range.base, range.size, range.node});
    }
    machine.locality_count = topology.node_count;
    for (uint32_t from = 0; from < topology.node_count; ++from)
        for (uint32_t to = 0; to < topology.node_count; ++to) machine.distances.push_back(topology.distances.at(from, to));
    return machine;
}

AcpiImage write_acpi_tables(const MachineDescription& machine, uint64_t gpa) {
    if (gpa % kRsdpAlignment != 0) refuse("the RSDP's GPA must be 16-byte aligned");
    const std::vector<uint8_t> madt = write_madt(machine);
    const std::vector<uint8_t> srat = write_srat(machine);
    const std::vector<uint8_t> slit = write_slit(machine);

    // Layout: RSDP, XSDT, MADT, SRAT, SLIT, each 16-byte aligned; the XSDT needs the others' GPAs.
    const uint64_t xsdt_offset = align_up(sizeof(Rsdp), kTableAlignment);
    const uint64_t xsdt_length = sizeof(TableHeader) + 3 * kXsdtEntrySize;
    const uint64_t madt_offset = align_up(xsdt_offset + xsdt_length, kTableAlignment);
    const uint64_t srat_offset = align_up(madt_offset + madt.size(), kTableAlignment);
    const uint64_t slit_offset = align_up(srat_offset + srat.size(), kTableAlignment);
    TableWriter xsdt_writer(kXsdtSignature, kXsdtRevision);
    for (uint64_t offset : {madt_offset, srat_offset, slit_offset}) xsdt_writer.append(uint64_t{gpa + offset});
    const std::vector<uint8_t> xsdt = std::move(xsdt_writer).finish();

    AcpiImage image;
    image.gpa = gpa;
    const Rsdp rsdp = make_rsdp(gpa + xsdt_offset);
    place(image, "RSD PTR ", 0, reinterpret_cast<const uint8_t*>(&rsdp), sizeof(rsdp));
    place(image, "XSDT", xsdt_offset, xsdt.data(), xsdt.size());
    place(image, "APIC", madt_offset, madt.data(), madt.size());
    place(image, "SRAT", srat_offset, srat.data(), srat.size());
    place(image, "SLIT", slit_offset, slit.data(), slit.size());
    return image;
}

AcpiImage build_acpi_tables(const numa::Topology& topology, uint32_t vcpu_count, uint64_t gpa, ApicEntries apic_entries) {
    if (numa::Status status = numa::validate_topology(topology, vcpu_count, numa::Symmetry::kAllowed); !status)
        refuse(status.message());
    AcpiImage image = write_acpi_tables(describe_machine(topology, apic_entries), gpa);
    if (image.bytes.size() > kMaxAcpiImageBytes) refuse("image larger than kMaxAcpiImageBytes");  // cannot happen: see static_assert
    return image;
}

}  // namespace hvkvm::acpi::host
