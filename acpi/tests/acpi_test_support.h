// Helpers for the ACPI tests: topologies to build from, parsing an image, and editing tables
// in an image (with their checksums fixed, so that only the intended flaw remains).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "hvkvm/acpi/host/builder.h"
#include "hvkvm/acpi/parser.h"

namespace hvkvm::acpi::test {

inline constexpr uint64_t kImageGpa = 0x9a000;

// `nodes` nodes, `cpus_per_node` vCPUs and one `mib_per_node` MiB range each, distances 20.
inline numa::Topology uniform_topology(uint32_t nodes, uint32_t cpus_per_node, uint64_t mib_per_node = 64) {
    numa::Topology topology;
    topology.node_count = nodes;
    for (uint32_t node = 0; node < nodes; ++node) {
        topology.node_cpus[node] = numa::CpuSet::range(node * cpus_per_node, cpus_per_node);
        topology.memory_ranges[node] = numa::MemoryRange{0x100000 + node * (mib_per_node << 20), mib_per_node << 20, node};
        for (uint32_t other = 0; other < nodes; ++other)
            topology.distances.set(node, other, node == other ? numa::kLocalDistance : 20);
    }
    topology.memory_range_count = nodes;
    return topology;
}

// A machine description for `nodes` nodes with `cpus_per_node` CPUs each (APIC ID = UID = index).
inline host::MachineDescription uniform_machine(uint32_t nodes, uint32_t cpus_per_node,
                                                host::ApicEntries entries = host::ApicEntries::kXApic) {
    return host::describe_machine(uniform_topology(nodes, cpus_per_node), entries);
}

inline std::string parse_error(const host::AcpiImage& image, ParsedTables& out) {
    return parse_acpi_tables(image.window(), image.rsdp_gpa(), out).message();
}

inline std::string parse_error(const host::AcpiImage& image) {
    static ParsedTables out;  // large; tests run one at a time
    return parse_error(image, out);
}

// Rewrites a table's checksum (both of them for the RSDP) after an edit.
inline void fix_checksum(host::AcpiImage& image, std::string_view signature) {
    const host::TableLocation& table = image.table(signature);
    uint8_t* bytes = image.bytes.data() + table.offset;
    if (signature == "RSD PTR ") {
        bytes[offsetof(Rsdp, checksum)] = 0;
        bytes[offsetof(Rsdp, checksum)] = checksum_byte(bytes, kRsdpV1Length);
        bytes[offsetof(Rsdp, extended_checksum)] = 0;
        bytes[offsetof(Rsdp, extended_checksum)] = checksum_byte(bytes, sizeof(Rsdp));
        return;
    }
    uint32_t length = 0;
    std::memcpy(&length, bytes + offsetof(TableHeader, length), sizeof(length));
    length = std::min<uint32_t>(length, static_cast<uint32_t>(image.bytes.size() - table.offset));
    bytes[offsetof(TableHeader, checksum)] = 0;
    bytes[offsetof(TableHeader, checksum)] = checksum_byte(bytes, length);
}

// Overwrites `value` at `offset` in a table and fixes its checksum.
template <typename T>
void patch(host::AcpiImage& image, std::string_view signature, uint64_t offset, T value) {
    std::memcpy(image.bytes.data() + image.table(signature).offset + offset, &value, sizeof(value));
    fix_checksum(image, signature);
}

template <typename T>
T read(const host::AcpiImage& image, std::string_view signature, uint64_t offset) {
    T value;
    std::memcpy(&value, image.bytes.data() + image.table(signature).offset + offset, sizeof(value));
    return value;
}

// Appends a table (header fields as given, checksum made right) at the end of the image and
// returns its GPA.
inline uint64_t append_table(host::AcpiImage& image, const char (&signature)[4], uint8_t revision,
                             const std::vector<uint8_t>& payload = {}) {
    const uint64_t offset = (image.bytes.size() + 15) / 16 * 16;
    TableHeader header{};
    std::memcpy(header.signature, signature, 4);
    header.length = static_cast<uint32_t>(sizeof(TableHeader) + payload.size());
    header.revision = revision;
    image.bytes.resize(offset);
    const auto* first = reinterpret_cast<const uint8_t*>(&header);
    image.bytes.insert(image.bytes.end(), first, first + sizeof(header));
    image.bytes.insert(image.bytes.end(), payload.begin(), payload.end());
    image.bytes[offset + offsetof(TableHeader, checksum)] = checksum_byte(image.bytes.data() + offset, header.length);
    return image.gpa + offset;
}

// Replaces the XSDT with one listing `entries` (appended at the end of the image) and points
// the RSDP at it.
inline void replace_xsdt(host::AcpiImage& image, const std::vector<uint64_t>& entries) {
    std::vector<uint8_t> payload(entries.size() * sizeof(uint64_t));
    std::memcpy(payload.data(), entries.data(), payload.size());
    const uint64_t gpa = append_table(image, kXsdtSignature, kXsdtRevision, payload);
    patch(image, "RSD PTR ", offsetof(Rsdp, xsdt_address), gpa);
}

inline uint64_t table_gpa(const host::AcpiImage& image, std::string_view signature) {
    return image.gpa + image.table(signature).offset;
}

}  // namespace hvkvm::acpi::test
