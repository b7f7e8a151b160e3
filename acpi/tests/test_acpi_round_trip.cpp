// Builder -> parser round trips: what the VMM writes is what the guest reads back.
#include <catch2/catch.hpp>

#include <random>

#include "acpi_test_support.h"

namespace hvkvm::acpi::test {
namespace {

using host::ApicEntries;

void check_same_topology(const numa::Topology& written, const numa::Topology& read) {
    REQUIRE(read.node_count == written.node_count);
    for (uint32_t node = 0; node < written.node_count; ++node) {
        CHECK(read.node_cpus[node] == written.node_cpus[node]);
        for (uint32_t other = 0; other < written.node_count; ++other)
            CHECK(read.distances.at(node, other) == written.distances.at(node, other));
    }
    REQUIRE(read.memory_range_count == written.memory_range_count);
    for (uint32_t i = 0; i < written.memory_range_count; ++i) {
        CHECK(read.memory_ranges[i].base == written.memory_ranges[i].base);
        CHECK(read.memory_ranges[i].size == written.memory_ranges[i].size);
        CHECK(read.memory_ranges[i].node == written.memory_ranges[i].node);
    }
}

void round_trip(const numa::Topology& topology, ApicEntries entries) {
    const uint32_t vcpus = topology.cpu_count();
    host::AcpiImage image = host::build_acpi_tables(topology, vcpus, kImageGpa, entries);
    CHECK(image.bytes.size() <= host::kMaxAcpiImageBytes);
    static ParsedTables parsed;
    INFO(parse_error(image, parsed));
    REQUIRE(parse_acpi_tables(image.window(), image.rsdp_gpa(), parsed).is_ok());
    check_same_topology(topology, parsed.topology);
    REQUIRE(parsed.cpu_count == vcpus);
    for (uint32_t i = 0; i < vcpus; ++i) {
        CHECK(parsed.cpus[i].apic_id == i);
        CHECK(parsed.cpus[i].uid == i);
        CHECK(parsed.cpus[i].node == topology.node_of_cpu(i));
    }
    CHECK(parsed.local_apic_address == abi::kLocalApicGpa);
    CHECK(parsed.pc_at_compatible);
    REQUIRE(parsed.io_apic_count == 1);
    CHECK(parsed.io_apics[0].address == abi::kIoApicGpa);
    CHECK(parsed.io_apics[0].gsi_base == 0);
    REQUIRE(parsed.override_count == 1);
    CHECK((parsed.overrides[0].isa_irq == 0 && parsed.overrides[0].gsi == 2 && parsed.overrides[0].flags == 0));
}

TEST_CASE("round trip: hand-picked topologies, with local APIC and x2APIC entries") {
    auto entries = GENERATE(ApicEntries::kXApic, ApicEntries::kX2Apic);

    SECTION("one node") { round_trip(uniform_topology(1, 1), entries); }
    SECTION("two nodes of four vCPUs") { round_trip(uniform_topology(2, 4), entries); }
    SECTION("every limit reached: 16 nodes, 64 vCPUs, 32 memory ranges") {
        numa::Topology topology = uniform_topology(numa::kMaxNodes, numa::kMaxCpus / numa::kMaxNodes, 2);
        for (uint32_t i = numa::kMaxNodes; i < numa::kMaxMemoryRanges; ++i)
            topology.memory_ranges[i] = numa::MemoryRange{0x100000000ull + (uint64_t{i} << 21), 1 << 21, i % numa::kMaxNodes};
        topology.memory_range_count = numa::kMaxMemoryRanges;
        for (uint32_t a = 0; a < numa::kMaxNodes; ++a)
            for (uint32_t b = 0; b < numa::kMaxNodes; ++b)
                if (a != b) topology.distances.set(a, b, static_cast<uint8_t>(11 + (a * 7 + b * 3) % 244));
        round_trip(topology, entries);
    }
    SECTION("memory split around the MMIO hole, a memory-only node, a CPU-only node") {
        numa::Topology topology = uniform_topology(3, 2);
        topology.node_cpus[0] = numa::CpuSet::range(0, 4);
        topology.node_cpus[1] = numa::CpuSet();                       // memory only
        topology.memory_ranges[0] = {0x100000, 0xbff00000, 0};        // below the 3 GiB hole
        topology.memory_ranges[1] = {0x100000000, 0x40000000, 1};     // above 4 GiB
        topology.memory_ranges[2] = {0x140000000, 0x40000000, 0};     // node 0's second range
        // node 2: vCPUs 4..5, no memory
        topology.distances = {};
        const uint8_t rows[3][3] = {{10, 21, 31}, {21, 10, 255}, {31, 255, 10}};
        for (uint32_t a = 0; a < 3; ++a)
            for (uint32_t b = 0; b < 3; ++b) topology.distances.set(a, b, rows[a][b]);
        round_trip(topology, entries);
    }
    SECTION("asymmetric distances") {
        numa::Topology topology = uniform_topology(2, 1);
        topology.distances.set(0, 1, 40);
        round_trip(topology, entries);
    }
}

numa::Topology random_topology(std::mt19937_64& random) {
    const uint32_t nodes = std::uniform_int_distribution<uint32_t>(1, numa::kMaxNodes)(random);
    const uint32_t vcpus = std::uniform_int_distribution<uint32_t>(1, numa::kMaxCpus)(random);
    numa::Topology topology;
    topology.node_count = nodes;
    for (uint32_t cpu = 0; cpu < vcpus; ++cpu) topology.node_cpus[random() % nodes].add(cpu);
    // Contiguous page-aligned ranges of random sizes, each on a random node; then every node
    // without CPUs or memory gets a range, so that the topology is valid.
    uint64_t next = 0x100000;
    auto add_range = [&](uint32_t node) {
        const uint64_t size = (1 + random() % 512) * numa::kMemoryGranule;
        topology.memory_ranges[topology.memory_range_count++] = {next, size, node};
        next += size + (random() % 2) * numa::kMemoryGranule;
    };
    const uint32_t ranges = std::uniform_int_distribution<uint32_t>(1, numa::kMaxMemoryRanges - nodes)(random);
    for (uint32_t i = 0; i < ranges; ++i) add_range(static_cast<uint32_t>(random() % nodes));
    for (uint32_t node = 0; node < nodes; ++node)
        if (topology.node_cpus[node].empty() && topology.node_memory_bytes(node) == 0) add_range(node);
    const bool symmetric = random() % 2 == 0;
    for (uint32_t a = 0; a < nodes; ++a) {
        topology.distances.set(a, a, numa::kLocalDistance);
        for (uint32_t b = symmetric ? a + 1 : 0; b < nodes; ++b) {
            if (a == b) continue;
            const auto distance = static_cast<uint8_t>(std::uniform_int_distribution<int>(11, 255)(random));
            if (symmetric) topology.distances.set_symmetric(a, b, distance);
            else topology.distances.set(a, b, distance);
        }
    }
    return topology;
}

TEST_CASE("round trip: 500 random topologies") {
    std::mt19937_64 random(0x61637069);
    for (int i = 0; i < 500; ++i) {
        numa::Topology topology = random_topology(random);
        REQUIRE(numa::validate_topology(topology, topology.cpu_count(), numa::Symmetry::kAllowed).is_ok());
        INFO("topology " << i);
        round_trip(topology, i % 2 ? ApicEntries::kX2Apic : ApicEntries::kXApic);
    }
}

TEST_CASE("round trip: the builder refuses an invalid topology with the model's message") {
    numa::Topology topology = uniform_topology(2, 2);
    topology.node_cpus[1].add(0);
    CHECK_THROWS_WITH(host::build_acpi_tables(topology, 4, kImageGpa), "ACPI tables: vCPU 0 is in node 0 and node 1");
    CHECK_THROWS_WITH(host::build_acpi_tables(uniform_topology(2, 2), 4, kImageGpa + 8),
                      "ACPI tables: the RSDP's GPA must be 16-byte aligned");
}

TEST_CASE("round trip: local APIC entries cannot carry IDs above 255") {
    host::MachineDescription machine = uniform_machine(1, 1);
    machine.cpus[0].apic_id = 256;
    CHECK_THROWS_WITH(host::write_acpi_tables(machine, kImageGpa), "ACPI tables: APIC ID 256 needs x2APIC entries");
    machine.apic_entries = ApicEntries::kX2Apic;
    CHECK_NOTHROW(host::write_acpi_tables(machine, kImageGpa));
}

TEST_CASE("round trip: the image is laid out as docs/numa.md shows") {
    host::AcpiImage image = host::build_acpi_tables(uniform_topology(2, 2), 4, kImageGpa);
    CHECK(image.table("RSD PTR ").offset == 0);
    CHECK(image.table("XSDT").offset == 48);
    CHECK(image.table("APIC").offset == 112);
    for (const host::TableLocation& table : image.tables) CHECK(table.offset % 16 == 0);
    CHECK(read<uint64_t>(image, "RSD PTR ", offsetof(Rsdp, xsdt_address)) == kImageGpa + 48);
    CHECK(read<uint64_t>(image, "XSDT", sizeof(TableHeader)) == table_gpa(image, "APIC"));
    CHECK(read<uint64_t>(image, "XSDT", sizeof(TableHeader) + 8) == table_gpa(image, "SRAT"));
    CHECK(read<uint64_t>(image, "XSDT", sizeof(TableHeader) + 16) == table_gpa(image, "SLIT"));
    CHECK(image.bytes.size() == image.table("SLIT").offset + image.table("SLIT").length);
}

}  // namespace
}  // namespace hvkvm::acpi::test
