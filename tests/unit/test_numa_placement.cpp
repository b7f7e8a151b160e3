// The VMM's side of virtual NUMA: the host-placement check of the config, the topology it gives
// the guest, the ACPI tables it writes (read back by the guest's own discovery code, the same
// source the guest runs), binding guest RAM to host nodes and reading the binding back.
#include <catch2/catch.hpp>

#include <numaif.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "boot/acpi_tables.h"
#include "boot/boot_setup.h"
#include "boot/elf_loader.h"
#include "config/host_numa_check.h"
#include "hvkvm/numa/host/host_numa.h"
#include "kernel/boot_info.h"
#include "kvm/guest_memory.h"
#include "machine/numa_placement.h"
#include "machine/partition.h"
#include "mm/numa_discovery.h"

using namespace hvkvm;
using namespace hvkvm::vmm;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using numa::host::HostNode;

namespace {

constexpr uint64_t kMiB = 1ull << 20;

NumaNodeConfig node_config(std::vector<uint32_t> vcpus, uint64_t memory_mib, std::optional<uint32_t> host_node = {}) {
    NumaNodeConfig node;
    node.vcpus = std::move(vcpus);
    node.memory_mib = memory_mib;
    node.host_node = host_node;
    return node;
}

// A config with `nodes` and SLIT `distances` (10 on the diagonal, `remote` elsewhere if empty).
VmConfig numa_machine(uint32_t vcpus, std::vector<NumaNodeConfig> nodes, std::vector<std::vector<uint32_t>> distances = {}) {
    VmConfig config;
    config.machine.vcpus = vcpus;
    config.machine.memory_mib = 0;
    for (const auto& node : nodes) config.machine.memory_mib += node.memory_mib;
    if (distances.empty()) {
        distances.assign(nodes.size(), std::vector<uint32_t>(nodes.size(), kDefaultRemoteDistance));
        for (size_t i = 0; i < nodes.size(); ++i) distances[i][i] = numa::kLocalDistance;
    }
    config.numa.nodes = std::move(nodes);
    config.numa.distances = std::move(distances);
    return config;
}

VmConfig single_node_machine(uint32_t vcpus, uint64_t memory_mib) {
    VmConfig config;
    config.machine.vcpus = vcpus;
    config.machine.memory_mib = memory_mib;
    return config;
}

std::string check_error(const NumaConfig& numa, const std::vector<HostNode>& host) {
    try {
        check_host_numa_placement(numa, host);
        return "";
    } catch (const ConfigError& error) {
        return error.what();
    }
}

// Guest RAM with everything the VMM writes before the first KVM_RUN that the guest's topology
// discovery reads: boot info (with its memory map) and the ACPI tables.
struct BootedGuest {
    GuestMemory memory;
    numa::Topology topology;

    abi::BootInfo& info() { return memory.object_at<abi::BootInfo>(abi::kBootInfoGpa); }
    const uint8_t* acpi_window() {
        return reinterpret_cast<const uint8_t*>(memory.span(info().acpi_tables_gpa, info().acpi_tables_size).data());
    }
    numa::Status discover(acpi::ParsedTables& tables) { return guest::mm::discover_topology(info(), acpi_window(), tables); }
};

BootedGuest boot(const VmConfig& config, std::string_view corrupt_table = {}) {
    BootedGuest guest{GuestMemory::create(memory_layout_for(config)), {}};
    guest.topology = guest_topology(config, guest.memory.layout());
    const BootLayout layout = build_boot_page_tables(guest.memory);
    KernelImage kernel;
    kernel.start = 0x100000;
    kernel.end = 0x345678;
    kernel.entry = kernel.start;
    const AcpiPlacement acpi = write_acpi_tables(guest.memory, guest.topology, config.machine.vcpus, corrupt_table);
    write_boot_info(guest.memory, kernel, layout, BootParameters{config.machine.vcpus, 0, 2600000, "", acpi});
    return guest;
}

void require_same_topology(const numa::Topology& actual, const numa::Topology& expected) {
    REQUIRE(actual.node_count == expected.node_count);
    for (uint32_t node = 0; node < expected.node_count; ++node) {
        INFO("node " << node);
        CHECK(actual.node_cpus[node] == expected.node_cpus[node]);
        for (uint32_t to = 0; to < expected.node_count; ++to)
            CHECK(int(actual.distances.at(node, to)) == int(expected.distances.at(node, to)));
    }
    REQUIRE(actual.memory_range_count == expected.memory_range_count);
    for (uint32_t i = 0; i < expected.memory_range_count; ++i) {
        INFO("memory range " << i);
        CHECK(actual.memory_ranges[i].base == expected.memory_ranges[i].base);
        CHECK(actual.memory_ranges[i].size == expected.memory_ranges[i].size);
        CHECK(actual.memory_ranges[i].node == expected.memory_ranges[i].node);
    }
}

// The host's nodes, or nullopt (with the reason printed as a skip) if it has no NUMA support.
std::optional<std::vector<HostNode>> host_nodes_or_skip() {
    try {
        return numa::host::host_nodes();
    } catch (const numa::host::HostNumaError& error) {
        WARN("SKIPPED: " << error.what());
        return std::nullopt;
    }
}

uint32_t absent_host_node(const std::vector<HostNode>& host) {
    uint32_t highest = 0;
    for (const HostNode& node : host) highest = std::max(highest, node.id);
    return highest + 1;
}

}  // namespace

TEST_CASE("numa: the host placement check names the key and the problem", "[numa]") {
    const std::vector<HostNode> host = {
        {0, 1ull << 30, true, {0, 1}},
        {1, 0, true, {2, 3}},             // CPUs only
        {2, 1ull << 30, false, {4}},      // outside this process's cpuset
        {3, 1ull << 30, true, {}},        // memory only
    };
    VmConfig config = numa_machine(2, {node_config({0}, 64, 0), node_config({1}, 64, 0)});
    NumaConfig& numa = config.numa;
    CHECK(check_error(numa, host).empty());
    numa.nodes[1].host_node = 5;
    CHECK(check_error(numa, host) ==
          "numa.nodes[1].host_node: host NUMA node 5 does not exist (this host has node(s) 0, 1, 2, 3)");
    numa.nodes[1].host_node = 1;
    CHECK(check_error(numa, host) == "numa.nodes[1].host_node: host NUMA node 1 has no memory");
    numa.nodes[1].host_node = 2;
    CHECK(check_error(numa, host) ==
          "numa.nodes[1].host_node: host NUMA node 2 is outside this process's cpuset (cpuset.mems)");
    numa.nodes[1].host_node = 3;
    CHECK(check_error(numa, host).empty());  // memory is all binding needs
    numa.pin_vcpus = true;
    CHECK(check_error(numa, host) ==
          "numa.nodes[1].host_node: host NUMA node 3 has no CPUs to pin this node's vCPUs to (numa.pin_vcpus)");
    numa.nodes[0].vcpus = {0, 1};
    numa.nodes[1].vcpus = {};
    CHECK(check_error(numa, host).empty());  // a node without vCPUs pins nothing
    numa.nodes[1].host_node.reset();
    numa.nodes[0].host_node = 9;
    CHECK_THAT(check_error(numa, host), StartsWith("numa.nodes[0].host_node: host NUMA node 9 does not exist"));
}

TEST_CASE("numa: the host placement check against this host's own nodes", "[numa]") {
    const auto host = host_nodes_or_skip();
    if (!host) return;
    VmConfig config = numa_machine(2, {node_config({0}, 64, 0), node_config({1}, 64, absent_host_node(*host))});
    CHECK_THAT(check_error(config.numa, *host),
               StartsWith(fmt::format("numa.nodes[1].host_node: host NUMA node {} does not exist (this host has node(s) ",
                                      absent_host_node(*host))));
    config.numa.nodes[1].host_node = 0;
    config.numa.pin_vcpus = true;
    CHECK(check_error(config.numa, *host).empty());  // node 0 exists on every NUMA host
}

TEST_CASE("numa: the guest's topology follows the config and the memory layout", "[numa]") {
    SECTION("two nodes") {
        const VmConfig config = numa_machine(4, {node_config({0, 1}, 256), node_config({2, 3}, 256)});
        const numa::Topology topology = guest_topology(config, memory_layout_for(config));
        CHECK(numa::validate_topology(topology, 4, numa::Symmetry::kRequired).is_ok());
        CHECK(topology.node_count == 2);
        CHECK(topology.node_cpus[0] == numa::CpuSet::range(0, 2));
        CHECK(topology.node_cpus[1] == numa::CpuSet::range(2, 2));
        REQUIRE(topology.memory_range_count == 2);
        CHECK(topology.memory_ranges[1].base == 256 * kMiB);
        CHECK(topology.memory_ranges[1].size == 256 * kMiB);
        CHECK(topology.memory_ranges[1].node == 1);
        CHECK(int(topology.distances.at(0, 1)) == 20);
    }
    SECTION("a node split by the MMIO hole has two ranges") {
        const VmConfig config = numa_machine(2, {node_config({0}, 2048), node_config({1}, 2048), node_config({}, 2048)},
                                             {{10, 20, 30}, {20, 10, 20}, {30, 20, 10}});
        const numa::Topology topology = guest_topology(config, memory_layout_for(config));
        CHECK(numa::validate_topology(topology, 2, numa::Symmetry::kRequired).is_ok());
        REQUIRE(topology.memory_range_count == 4);
        CHECK(topology.memory_ranges[1].base == 2048 * kMiB);
        CHECK(topology.memory_ranges[1].end() == abi::kMmioHoleStart);
        CHECK(topology.memory_ranges[2].base == abi::kMmioHoleEnd);
        CHECK(topology.memory_ranges[1].node == 1);
        CHECK(topology.memory_ranges[2].node == 1);
        CHECK(topology.node_memory_bytes(1) == 2048 * kMiB);
        CHECK(topology.node_cpus[2].empty());
        CHECK(int(topology.distances.at(2, 0)) == 30);
    }
    SECTION("without numa.nodes: one node with everything") {
        const VmConfig config = single_node_machine(8, 256);
        const numa::Topology topology = guest_topology(config, memory_layout_for(config));
        CHECK(topology.node_count == 1);
        CHECK(topology.node_cpus[0] == numa::CpuSet::range(0, 8));
        CHECK(topology.node_memory_bytes(0) == 256 * kMiB);
        CHECK(int(topology.distances.at(0, 0)) == 10);
    }
}

TEST_CASE("numa: the guest reads back the CPUs, nodes and distances the VMM writes", "[numa]") {
    const VmConfig configs[] = {
        single_node_machine(1, 64),
        single_node_machine(64, 256),
        numa_machine(4, {node_config({0, 1}, 64), node_config({2, 3}, 64)}),
        numa_machine(4, {node_config({0}, 64), node_config({1}, 64), node_config({2}, 64), node_config({3}, 64)},
                     {{10, 16, 22, 28}, {16, 10, 16, 22}, {22, 16, 10, 16}, {28, 22, 16, 10}}),
        // Split by the MMIO hole, a CPU-less node, asymmetric and unreachable distances.
        numa_machine(3, {node_config({0, 2}, 2048), node_config({1}, 2048), node_config({}, 2048)},
                     {{10, 20, 255}, {21, 10, 20}, {255, 20, 10}}),
    };
    for (const VmConfig& config : configs) {
        INFO(config.numa.nodes.size() << " node(s), " << config.machine.vcpus << " vCPUs");
        BootedGuest guest = boot(config);
        REQUIRE(guest::validate_boot_info(guest.info(), reinterpret_cast<const char*>(
                                                            guest.memory.span(abi::kCmdlineGpa, 1).data())) == nullptr);
        acpi::ParsedTables tables;
        const numa::Status status = guest.discover(tables);
        INFO(status.message());
        REQUIRE(status.is_ok());
        CHECK(tables.cpu_count == config.machine.vcpus);
        require_same_topology(tables.topology, guest.topology);
    }
}

TEST_CASE("numa: the guest refuses ACPI tables that are damaged or disagree with the boot info", "[numa]") {
    const VmConfig config = numa_machine(4, {node_config({0, 1}, 64), node_config({2, 3}, 64)});
    acpi::ParsedTables tables;
    SECTION("a spoilt checksum (debug.corrupt_acpi_table) is named") {
        const std::pair<std::string, std::string> cases[] = {
            {"RSD PTR ", "ACPI: RSDP: checksum of the first 20 bytes is wrong"},
            {"XSDT", "ACPI: XSDT"},
            {"APIC", "'APIC'"},
            {"SRAT", "'SRAT'"},
            {"SLIT", "'SLIT'"},
        };
        for (const auto& [table, expected] : cases) {
            BootedGuest guest = boot(config, table);
            const numa::Status status = guest.discover(tables);
            INFO(table << ": " << status.message());
            CHECK_FALSE(status.is_ok());
            CHECK_THAT(status.message(), StartsWith("ACPI: ") && Contains(expected) && Contains("checksum"));
        }
    }
    SECTION("a CPU count other than the boot info's") {
        BootedGuest guest = boot(config);
        guest.info().vcpu_count = 3;
        CHECK(std::string(guest.discover(tables).message()) == "ACPI: the MADT lists 4 CPUs, the boot info 3");
    }
    SECTION("memory the SRAT does not describe, or describes but does not exist") {
        BootedGuest guest = boot(config);
        abi::BootInfo& info = guest.info();
        const abi::BootInfo good = info;
        REQUIRE(guest.discover(tables).is_ok());  // exact fit: the SRAT covers the memory map, nothing more
        abi::MemoryRegion& last = info.memory_regions[info.memory_region_count - 1];
        last.size += abi::kPageSize;
        CHECK_THAT(guest.discover(tables).message(),
                   StartsWith(fmt::format("ACPI: memory-map region {} [", info.memory_region_count - 1)) &&
                       Contains("is not inside the SRAT's memory"));
        info = good;
        info.memory_bytes -= abi::kPageSize;
        CHECK(std::string(guest.discover(tables).message()) ==
              "ACPI: the SRAT describes 131072 KiB of memory, the boot info only 131068 KiB");
    }
}

TEST_CASE("numa: guest RAM of each node is bound to its host node (get_mempolicy, move_pages)", "[numa]") {
    const auto host = host_nodes_or_skip();
    if (!host) return;
    // Node 0 bound to host node 0 (which every NUMA host has), node 1 left to the default policy.
    const VmConfig config = numa_machine(2, {node_config({0}, 8, 0), node_config({1}, 8)});
    GuestMemory memory = GuestMemory::create(memory_layout_for(config));
    bind_guest_memory(memory, config.numa);
    const RamRegion& bound = memory.regions().at(0);
    const RamRegion& unbound = memory.regions().at(1);
    std::byte* bound_bytes = memory.span(bound.gpa, bound.size).data();

    const numa::host::MemoryPolicy policy = numa::host::memory_policy_at(bound_bytes);
    CHECK(policy.mode == MPOL_BIND);
    CHECK(policy.nodes == std::vector<uint32_t>{0});
    CHECK(numa::host::memory_policy_at(bound_bytes + bound.size - 1).mode == MPOL_BIND);
    CHECK(numa::host::memory_policy_at(memory.span(unbound.gpa, 1).data()).mode == MPOL_DEFAULT);
    // Binding touched nothing: the pages appear where KVM or the loader first writes them.
    for (int status : numa::host::nodes_of_pages(bound_bytes, bound.size)) CHECK(status == -ENOENT);

    std::memset(bound_bytes, 0xa5, bound.size);
    const std::vector<int> nodes = numa::host::nodes_of_pages(bound_bytes, bound.size);
    CHECK(std::count(nodes.begin(), nodes.end(), 0) == static_cast<long>(bound.size / 4096));
    const std::vector<std::string> lines = describe_memory_placement(memory, config.numa);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0] == "node 0: 8 MiB, bound to host node 0, policy MPOL_BIND {0}, 2048 pages resident, 2048 on host node 0");
    CHECK(lines[1] == "node 1: 8 MiB, not bound, policy MPOL_DEFAULT, 0 pages resident");
}

TEST_CASE("numa: binding guest RAM to an absent host node fails naming the node", "[numa]") {
    const auto host = host_nodes_or_skip();
    if (!host) return;
    const uint32_t absent = absent_host_node(*host);
    const VmConfig config = numa_machine(2, {node_config({0}, 8, 0), node_config({1}, 8, absent)});
    GuestMemory memory = GuestMemory::create(memory_layout_for(config));
    CHECK_THROWS_WITH(bind_guest_memory(memory, config.numa),
                      StartsWith(fmt::format("host NUMA node {} does not exist (this host has node(s) ", absent)));
    // The node after it was never bound.
    CHECK(numa::host::memory_policy_at(memory.span(memory.regions().at(1).gpa, 1).data()).mode == MPOL_DEFAULT);
}

TEST_CASE("numa: guest RAM bound to a second host node lands there", "[numa]") {
    const auto host = host_nodes_or_skip();
    if (!host) return;
    const auto second = std::find_if(host->begin(), host->end(), [](const HostNode& node) {
        return node.id != 0 && node.memory_bytes > 0 && node.memory_allowed;
    });
    if (second == host->end()) {
        WARN("SKIPPED: this host has no second NUMA node with memory this process may use");
        return;
    }
    const VmConfig config = numa_machine(2, {node_config({0}, 8, 0), node_config({1}, 8, second->id)});
    GuestMemory memory = GuestMemory::create(memory_layout_for(config));
    bind_guest_memory(memory, config.numa);
    const RamRegion& region = memory.regions().at(1);
    std::byte* bytes = memory.span(region.gpa, region.size).data();
    std::memset(bytes, 1, region.size);
    for (int status : numa::host::nodes_of_pages(bytes, region.size)) CHECK(status == static_cast<int>(second->id));
}

TEST_CASE("numa: vCPU threads are pinned to their node's host node only with numa.pin_vcpus", "[numa]") {
    VmConfig config = numa_machine(3, {node_config({0, 2}, 8, 0), node_config({1}, 8, 4)});
    CHECK_FALSE(vcpu_host_node(config.numa, 1));
    config.numa.pin_vcpus = true;
    CHECK(vcpu_host_node(config.numa, 0) == 0u);
    CHECK(vcpu_host_node(config.numa, 1) == 4u);
    CHECK(vcpu_host_node(config.numa, 2) == 0u);
    CHECK_FALSE(vcpu_host_node(single_node_machine(2, 64).numa, 0));
    CHECK(cpu_list_text({0, 1, 2, 5, 7, 8}) == "0-2,5,7-8");
    CHECK(cpu_list_text({3}) == "3");
    CHECK(cpu_list_text({}) == "none");
}
