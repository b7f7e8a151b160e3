// RSDP -> XSDT -> the tables hvkvm needs, then the topology they describe together.
#include "hvkvm/acpi/parser.h"

#include "hvkvm/numa/topology.h"
#include "parser_internal.h"

namespace hvkvm::acpi {
namespace {

using detail::as_ull;
using detail::copy_bytes;
using detail::TableRef;
using numa::Status;

bool window_holds(const TableWindow& window, uint64_t gpa, uint64_t length) {
    if (window.bytes == nullptr || gpa < window.gpa) return false;
    const uint64_t offset = gpa - window.gpa;
    return offset <= window.size && length <= window.size - offset;
}

const uint8_t* window_at(const TableWindow& window, uint64_t gpa) { return window.bytes + (gpa - window.gpa); }

bool same_signature(const char* a, const char* b, size_t length) {
    for (size_t i = 0; i < length; ++i)
        if (a[i] != b[i]) return false;
    return true;
}

// A signature as text for messages, with anything unprintable shown as '?'.
struct PrintableSignature {
    char text[5] = {};
    explicit PrintableSignature(const char (&signature)[4]) {
        for (int i = 0; i < 4; ++i) text[i] = signature[i] >= 0x20 && signature[i] < 0x7f ? signature[i] : '?';
    }
};

Status check_rsdp(const TableWindow& window, uint64_t gpa, Rsdp& rsdp) {
    if (gpa % kRsdpAlignment != 0) return Status::failure("RSDP at %#llx is not 16-byte aligned", as_ull(gpa));
    if (!window_holds(window, gpa, sizeof(Rsdp)))
        return Status::failure("RSDP at %#llx is not inside the ACPI window", as_ull(gpa));
    const uint8_t* bytes = window_at(window, gpa);
    copy_bytes(&rsdp, bytes, sizeof(rsdp));
    if (!same_signature(rsdp.signature, kRsdpSignature, sizeof(kRsdpSignature))) return Status::failure("RSDP: bad signature");
    if (byte_sum(bytes, kRsdpV1Length) != 0) return Status::failure("RSDP: checksum of the first 20 bytes is wrong");
    if (rsdp.revision < kRsdpRevision)
        return Status::failure("RSDP: revision %u; ACPI 2.0+ (revision 2) is needed for an XSDT", rsdp.revision);
    if (rsdp.length < sizeof(Rsdp) || !window_holds(window, gpa, rsdp.length))
        return Status::failure("RSDP: length %u is below 36 or runs past the ACPI window", rsdp.length);
    if (byte_sum(bytes, rsdp.length) != 0) return Status::failure("RSDP: extended checksum is wrong");
    return Status::ok();
}

// Checks what every table has in common: its header and whole length lie in the window, and
// its checksum. The caller prefixes a failure with what the table was meant to be.
Status load_table(const TableWindow& window, uint64_t gpa, TableRef& table, TableHeader& header) {
    if (!window_holds(window, gpa, sizeof(TableHeader)))
        return Status::failure("header at %#llx is not inside the ACPI window", as_ull(gpa));
    const uint8_t* bytes = window_at(window, gpa);
    copy_bytes(&header, bytes, sizeof(header));
    PrintableSignature signature(header.signature);
    if (header.length < sizeof(TableHeader))
        return Status::failure("'%s' length %u is shorter than a table header", signature.text, header.length);
    if (!window_holds(window, gpa, header.length))
        return Status::failure("'%s' at %#llx: length %u runs past the ACPI window", signature.text, as_ull(gpa),
                               header.length);
    if (byte_sum(bytes, header.length) != 0) return Status::failure("'%s' checksum is wrong", signature.text);
    table = TableRef{"table", gpa, bytes, header.length, header.revision};
    return Status::ok();
}

struct FoundTables {
    TableRef madt, srat, slit;  // bytes == nullptr until the XSDT lists the table
};

// Records a table the XSDT lists if it is one hvkvm reads; others are checked, then ignored.
Status note_table(const TableRef& table, const TableHeader& header, uint32_t index, FoundTables& found) {
    struct Wanted {
        const char (&signature)[4];
        const char* name;
        TableRef& slot;
    };
    Wanted wanted[] = {{kMadtSignature, "MADT", found.madt}, {kSratSignature, "SRAT", found.srat},
                       {kSlitSignature, "SLIT", found.slit}};
    for (Wanted& candidate : wanted) {
        if (!same_signature(header.signature, candidate.signature, 4)) continue;
        if (candidate.slot.bytes != nullptr) return Status::failure("XSDT entry %u: a second %s", index, candidate.name);
        candidate.slot = table;
        candidate.slot.name = candidate.name;
    }
    return Status::ok();
}

Status find_tables(const TableWindow& window, uint64_t xsdt_gpa, FoundTables& found) {
    TableRef xsdt;
    TableHeader header{};
    if (Status status = load_table(window, xsdt_gpa, xsdt, header); !status) return status.with_prefix("XSDT");
    xsdt.name = "XSDT";
    if (!same_signature(header.signature, kXsdtSignature, 4))
        return Status::failure("XSDT: signature is '%s'", PrintableSignature(header.signature).text);
    if (Status status = detail::check_table_shape(xsdt, kXsdtRevision, sizeof(TableHeader)); !status) return status;
    const uint32_t payload = xsdt.length - static_cast<uint32_t>(sizeof(TableHeader));
    if (payload % kXsdtEntrySize != 0) return Status::failure("XSDT: length %u leaves a partial entry", xsdt.length);
    const uint32_t entry_count = payload / kXsdtEntrySize;
    if (entry_count > kMaxXsdtEntries)
        return Status::failure("XSDT: %u entries; at most %u are supported", entry_count, kMaxXsdtEntries);

    for (uint32_t index = 0; index < entry_count; ++index) {
        uint64_t gpa = 0;
        copy_bytes(&gpa, xsdt.bytes + sizeof(TableHeader) + index * kXsdtEntrySize, sizeof(gpa));
        TableRef table;
        if (Status status = load_table(window, gpa, table, header); !status)
            return status.with_prefix("XSDT entry %u", index);
        if (Status status = note_table(table, header, index, found); !status) return status;
    }
    if (found.madt.bytes == nullptr) return Status::failure("XSDT lists no MADT");
    if (found.srat.bytes == nullptr) return Status::failure("XSDT lists no SRAT");
    if (found.slit.bytes == nullptr) return Status::failure("XSDT lists no SLIT");
    return Status::ok();
}

// The topology as a whole: every locality describes something, then the model's own checks.
Status check_topology(const ParsedTables& out) {
    const numa::Topology& topology = out.topology;
    numa::NodeMask described = topology.nodes_with_memory() | topology.nodes_with_cpus();
    for (uint32_t node = 0; node < topology.node_count; ++node)
        if (!numa::contains(described, node))
            return Status::failure("SLIT locality %u has no CPUs or memory in the SRAT", node);
    return numa::validate_topology(topology, out.cpu_count, numa::Symmetry::kAllowed).with_prefix("ACPI topology");
}

}  // namespace

namespace detail {

Status check_table_shape(const TableRef& table, uint8_t min_revision, uint32_t header_size) {
    if (table.revision < min_revision)
        return Status::failure("%s: revision %u; at least %u is needed", table.name, table.revision, min_revision);
    if (table.length < header_size)
        return Status::failure("%s: length %u is shorter than its %u-byte header", table.name, table.length, header_size);
    return Status::ok();
}

}  // namespace detail

Status parse_acpi_tables(const TableWindow& window, uint64_t rsdp_gpa, ParsedTables& out) {
    out = ParsedTables();
    Rsdp rsdp{};
    if (Status status = check_rsdp(window, rsdp_gpa, rsdp); !status) return status;
    FoundTables found;
    if (Status status = find_tables(window, rsdp.xsdt_address, found); !status) return status;
    // The SRAT refers to the MADT's CPUs and the SLIT's localities, so it comes last.
    if (Status status = detail::parse_madt(found.madt, out); !status) return status;
    if (Status status = detail::parse_slit(found.slit, out); !status) return status;
    if (Status status = detail::parse_srat(found.srat, out); !status) return status;
    return check_topology(out);
}

}  // namespace hvkvm::acpi
