// Pieces shared by the table parsers (parser.cpp, madt.cpp, srat.cpp, slit.cpp).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hvkvm/acpi/parser.h"
#include "hvkvm/acpi/tables.h"
#include "hvkvm/numa/status.h"

namespace hvkvm::acpi::detail {

using numa::Status;

inline void copy_bytes(void* destination, const void* source, size_t count) {
    __builtin_memcpy(destination, source, count);
}

inline unsigned long long as_ull(uint64_t value) { return value; }

// A table whose header lies in the window, whose length fits the window and whose checksum
// is right; its contents are not yet validated.
struct TableRef {
    const char* name = "";  // "MADT", ...
    uint64_t gpa = 0;
    const uint8_t* bytes = nullptr;
    uint32_t length = 0;
    uint8_t revision = 0;
};

// Checks the revision and that the table holds at least its fixed header.
Status check_table_shape(const TableRef& table, uint8_t min_revision, uint32_t header_size);

struct Subtable {
    uint32_t index = 0;  // position in the table, from 0
    uint8_t type = 0;
    uint8_t length = 0;
    const uint8_t* bytes = nullptr;
};

// Copies a subtable into its struct after checking its length is exactly that struct's.
template <typename Entry>
Status copy_subtable(const Subtable& subtable, Entry& entry) {
    if (subtable.length != sizeof(Entry))
        return Status::failure("type %u has length %u, expected %u", subtable.type, subtable.length,
                               static_cast<unsigned>(sizeof(Entry)));
    copy_bytes(&entry, subtable.bytes, sizeof(Entry));
    return Status::ok();
}

// Calls visit(const Subtable&) -> Status for each subtable from `first_offset` to the table's
// end, after checking that its header and its whole length lie inside the table. A failure
// is returned prefixed with "<table> entry <index>".
template <typename Visit>
Status walk_subtables(const TableRef& table, uint32_t first_offset, Visit&& visit) {
    uint32_t index = 0;
    for (uint32_t offset = first_offset; offset < table.length; ++index) {
        if (table.length - offset < sizeof(SubtableHeader))
            return Status::failure("%s entry %u: header at offset %u runs past the table end", table.name, index, offset);
        SubtableHeader header{};
        copy_bytes(&header, table.bytes + offset, sizeof(header));
        if (header.length < sizeof(SubtableHeader))
            return Status::failure("%s entry %u: length %u is shorter than an entry header", table.name, index, header.length);
        if (header.length > table.length - offset)
            return Status::failure("%s entry %u: length %u at offset %u runs past the table end (%u)", table.name, index,
                                   header.length, offset, table.length);
        Status status = visit(Subtable{index, header.type, header.length, table.bytes + offset});
        if (!status) return status.with_prefix("%s entry %u", table.name, index);
        offset += header.length;
    }
    return Status::ok();
}

Status parse_madt(const TableRef& madt, ParsedTables& out);
// Sets out.topology.node_count and distances.
Status parse_slit(const TableRef& slit, ParsedTables& out);
// Needs the MADT's CPUs and the SLIT's node count; sets each CPU's node and the memory ranges.
Status parse_srat(const TableRef& srat, ParsedTables& out);

}  // namespace hvkvm::acpi::detail
