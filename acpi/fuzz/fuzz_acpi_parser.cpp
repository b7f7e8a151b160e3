// libFuzzer harness for the guest's ACPI parser (build and run: acpi/fuzz/run.sh).
//
// The input is an image whose first byte is at kGpa, with the RSDP there. So that mutations get
// past the checksums to the structure behind them, the harness first repairs the checksums of
// the RSDP and of every table the parser would reach (checksum checks have their own unit tests).
// On success it checks what the guest relies on, and that writing the parsed topology back with
// the builder and parsing it again gives the same topology.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "hvkvm/acpi/host/builder.h"
#include "hvkvm/acpi/parser.h"

namespace {

using namespace hvkvm;

constexpr uint64_t kGpa = 0x9a000;

void require(bool condition) {
    if (!condition) __builtin_trap();
}

void repair_table(std::vector<uint8_t>& image, uint64_t gpa) {
    if (gpa < kGpa || gpa - kGpa > image.size() || image.size() - (gpa - kGpa) < sizeof(acpi::TableHeader)) return;
    uint8_t* table = image.data() + (gpa - kGpa);
    uint32_t length = 0;
    std::memcpy(&length, table + offsetof(acpi::TableHeader, length), sizeof(length));
    if (length < sizeof(acpi::TableHeader) || length > image.size() - (gpa - kGpa)) return;
    table[offsetof(acpi::TableHeader, checksum)] = 0;
    table[offsetof(acpi::TableHeader, checksum)] = acpi::checksum_byte(table, length);
}

void repair_checksums(std::vector<uint8_t>& image) {
    if (image.size() < sizeof(acpi::Rsdp)) return;
    uint8_t* rsdp = image.data();
    rsdp[offsetof(acpi::Rsdp, checksum)] = 0;
    rsdp[offsetof(acpi::Rsdp, checksum)] = acpi::checksum_byte(rsdp, acpi::kRsdpV1Length);
    rsdp[offsetof(acpi::Rsdp, extended_checksum)] = 0;
    rsdp[offsetof(acpi::Rsdp, extended_checksum)] = acpi::checksum_byte(rsdp, sizeof(acpi::Rsdp));
    uint64_t xsdt = 0;
    std::memcpy(&xsdt, rsdp + offsetof(acpi::Rsdp, xsdt_address), sizeof(xsdt));
    if (xsdt < kGpa || xsdt - kGpa > image.size() || image.size() - (xsdt - kGpa) < sizeof(acpi::TableHeader)) return;
    uint32_t length = 0;
    std::memcpy(&length, image.data() + (xsdt - kGpa) + offsetof(acpi::TableHeader, length), sizeof(length));
    for (uint64_t entry = sizeof(acpi::TableHeader); entry + 8 <= length && (xsdt - kGpa) + entry + 8 <= image.size(); entry += 8) {
        uint64_t gpa = 0;
        std::memcpy(&gpa, image.data() + (xsdt - kGpa) + entry, sizeof(gpa));
        if (gpa != xsdt) repair_table(image, gpa);
    }
    repair_table(image, xsdt);  // last: its entries are part of its sum
}

void check_parsed(const acpi::ParsedTables& parsed) {
    const numa::Topology& topology = parsed.topology;
    require(numa::validate_topology(topology, parsed.cpu_count, numa::Symmetry::kAllowed).is_ok());
    for (uint32_t i = 0; i < parsed.cpu_count; ++i) {
        require(parsed.cpus[i].apic_id < parsed.cpu_count);
        require(topology.node_of_cpu(parsed.cpus[i].apic_id) == parsed.cpus[i].node);
    }
    static acpi::ParsedTables again;
    acpi::host::AcpiImage image = acpi::host::build_acpi_tables(topology, parsed.cpu_count, kGpa, acpi::host::ApicEntries::kX2Apic);
    require(acpi::parse_acpi_tables(image.window(), kGpa, again).is_ok());
    require(again.topology.node_count == topology.node_count && again.cpu_count == parsed.cpu_count);
    require(again.topology.memory_range_count == topology.memory_range_count);
    for (uint32_t i = 0; i < topology.memory_range_count; ++i)
        require(std::memcmp(&again.topology.memory_ranges[i], &topology.memory_ranges[i], sizeof(numa::MemoryRange)) == 0);
    for (uint32_t node = 0; node < topology.node_count; ++node) {
        require(again.topology.node_cpus[node] == topology.node_cpus[node]);
        for (uint32_t other = 0; other < topology.node_count; ++other)
            require(again.topology.distances.at(node, other) == topology.distances.at(node, other));
    }
}

numa::Topology seed_topology(uint32_t nodes, uint32_t cpus_per_node) {
    numa::Topology topology;
    topology.node_count = nodes;
    for (uint32_t node = 0; node < nodes; ++node) {
        topology.node_cpus[node] = numa::CpuSet::range(node * cpus_per_node, cpus_per_node);
        topology.memory_ranges[node] = {0x100000 + (uint64_t{node} << 24), 1 << 24, node};
        for (uint32_t other = 0; other < nodes; ++other) topology.distances.set(node, other, node == other ? 10 : 20 + node + other);
    }
    topology.memory_range_count = nodes;
    return topology;
}

// HVKVM_FUZZ_WRITE_SEEDS=dir: write valid images as a starting corpus, then exit.
void write_seeds(const char* folder) {
    int count = 0;
    for (uint32_t nodes : {1u, 2u, 4u})
        for (auto entries : {acpi::host::ApicEntries::kXApic, acpi::host::ApicEntries::kX2Apic}) {
            numa::Topology topology = seed_topology(nodes, 2);
            auto image = acpi::host::build_acpi_tables(topology, topology.cpu_count(), kGpa, entries);
            std::ofstream(std::filesystem::path(folder) / ("seed" + std::to_string(count++)), std::ios::binary)
                .write(reinterpret_cast<const char*>(image.bytes.data()), static_cast<std::streamsize>(image.bytes.size()));
        }
    std::exit(0);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    if (const char* folder = std::getenv("HVKVM_FUZZ_WRITE_SEEDS")) write_seeds(folder);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> image(data, data + size);
    repair_checksums(image);
    static acpi::ParsedTables parsed;
    numa::Status status = acpi::parse_acpi_tables(acpi::TableWindow{image.data(), kGpa, image.size()}, kGpa, parsed);
    if (status.is_ok()) check_parsed(parsed);
    else require(std::strlen(status.message()) > 0 && std::strlen(status.message()) < numa::Status::kMessageCapacity);
    return 0;
}
