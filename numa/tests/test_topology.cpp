// Topology validation: each rule, each limit at the exact fit and one past, and the messages.
#include <catch2/catch.hpp>

#include <string>

#include "hvkvm/numa/topology.h"
#include "test_support.h"

namespace hvkvm::numa::test {
namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::Equals;

Status validate(const Topology& topology, uint32_t vcpus) {
    return validate_topology(topology, vcpus, Symmetry::kRequired);
}

TEST_CASE("topology: a simple topology is valid and answers queries") {
    Topology topology = simple_topology(3, 2);
    REQUIRE(validate(topology, 6).is_ok());
    CHECK(topology.node_of_cpu(3) == 1);
    CHECK(topology.node_of_cpu(6) == kNoNode);
    CHECK(topology.node_memory_bytes(2) == (uint64_t{1} << 26));
    CHECK(topology.nodes_with_memory() == 0b111);
    CHECK(topology.nodes_with_cpus() == 0b111);
    CHECK(topology.cpu_count() == 6);
}

TEST_CASE("topology: node count limit at the exact fit and one past") {
    CHECK(validate(simple_topology(kMaxNodes), kMaxNodes).is_ok());
    Topology too_many = simple_topology(kMaxNodes);
    too_many.node_count = kMaxNodes + 1;
    CHECK_THAT(message_of(validate(too_many, kMaxNodes)), Equals("17 nodes: the node count must be 1..16"));
}

TEST_CASE("topology: distance problems name the entry") {
    Topology topology = simple_topology(3);
    topology.distances.set(1, 2, 10);
    CHECK_THAT(message_of(validate(topology, 3)), Contains("distance[1][2] = 10: 10 means local"));
    topology.distances.set(1, 2, 30);
    CHECK_THAT(message_of(validate(topology, 3)), Contains("distance[1][2] = 30: differs from the mirrored entry"));
    CHECK(validate_topology(topology, 3, Symmetry::kAllowed).is_ok());
}

TEST_CASE("topology: vCPU count limit at the exact fit and one past") {
    Topology topology = simple_topology(2, kMaxCpus / 2);
    CHECK(validate(topology, kMaxCpus).is_ok());
    CHECK_THAT(message_of(validate(topology, kMaxCpus + 1)), Equals("65 vCPUs: must be 1..64"));
    CHECK_THAT(message_of(validate(topology, 0)), Equals("0 vCPUs: must be 1..64"));
}

TEST_CASE("topology: every vCPU in exactly one node") {
    Topology topology = simple_topology(3, 2);
    topology.node_cpus[2].add(1);
    CHECK_THAT(message_of(validate(topology, 6)), Equals("vCPU 1 is in node 0 and node 2"));

    topology = simple_topology(3, 2);
    topology.node_cpus[1] = CpuSet::range(2, 1);
    CHECK_THAT(message_of(validate(topology, 6)), Equals("vCPU 3 is in no node"));

    topology = simple_topology(3, 2);
    CHECK_THAT(message_of(validate(topology, 5)), Equals("node 2: vCPU 5 does not exist (there are 5)"));
}

TEST_CASE("topology: memory range count limit at the exact fit and one past") {
    Topology topology = simple_topology(2);
    topology.memory_range_count = kMaxMemoryRanges;
    for (uint32_t i = 0; i < kMaxMemoryRanges; ++i)
        topology.memory_ranges[i] = MemoryRange{uint64_t{i} << 20, uint64_t{1} << 20, i % 2};
    CHECK(validate(topology, 2).is_ok());
    topology.memory_range_count = kMaxMemoryRanges + 1;
    CHECK_THAT(message_of(validate(topology, 2)), Equals("33 memory ranges: must be 1..32"));
    topology.memory_range_count = 0;
    CHECK_THAT(message_of(validate(topology, 2)), Equals("0 memory ranges: must be 1..32"));
}

TEST_CASE("topology: memory ranges must be non-empty, aligned, not wrapping, on a node") {
    Topology topology = simple_topology(2);
    topology.memory_ranges[1].size = 0;
    CHECK_THAT(message_of(validate(topology, 2)), Equals("memory range 1 is empty"));

    topology = simple_topology(2);
    topology.memory_ranges[1].base += 512;
    CHECK_THAT(message_of(validate(topology, 2)), Contains("memory range 1 [0x4000200, +0x4000000) is not 4 KiB-aligned"));

    topology = simple_topology(2);
    topology.memory_ranges[1] = MemoryRange{~uint64_t{0} - 0xfff, 0x2000, 1};
    CHECK_THAT(message_of(validate(topology, 2)), Equals("memory range 1 wraps past the end of the address space"));

    topology = simple_topology(2);
    topology.memory_ranges[1].node = 2;
    CHECK_THAT(message_of(validate(topology, 2)), Equals("memory range 1 is on node 2, but there are 2 nodes"));
}

TEST_CASE("topology: overlapping ranges are refused, touching ones are not") {
    Topology topology = simple_topology(3);
    topology.memory_ranges[2].base = topology.memory_ranges[0].end();  // touches range 0, overlaps range 1
    CHECK_THAT(message_of(validate(topology, 3)), Equals("memory ranges 1 and 2 overlap"));
    topology.memory_ranges[2].base = topology.memory_ranges[1].end();
    CHECK(validate(topology, 3).is_ok());
    topology.memory_ranges[2].base = topology.memory_ranges[1].end() - kMemoryGranule;
    CHECK_THAT(message_of(validate(topology, 3)), Equals("memory ranges 1 and 2 overlap"));
}

TEST_CASE("topology: memory-only and CPU-only nodes are fine, a node with neither is not") {
    Topology topology = simple_topology(3);
    topology.node_cpus[0] = CpuSet::range(0, 2);
    topology.node_cpus[1] = CpuSet();
    CHECK(validate(topology, 3).is_ok());  // node 1 has memory only
    topology.memory_ranges[2].node = 0;
    CHECK(validate(topology, 3).is_ok());  // node 2 has a vCPU only
    topology.memory_ranges[1].node = 0;
    CHECK_THAT(message_of(validate(topology, 3)), Equals("node 1 has neither vCPUs nor memory"));
}

TEST_CASE("topology: Status keeps its message within its capacity and can be prefixed") {
    Status long_failure = Status::failure("%0200d", 7);
    CHECK(std::string(long_failure.message()).size() == Status::kMessageCapacity - 1);
    Status prefixed = Status::failure("bad entry").with_prefix("SRAT entry %d", 3);
    CHECK_THAT(std::string(prefixed.message()), Equals("SRAT entry 3: bad entry"));
    CHECK(Status::ok().with_prefix("never").is_ok());
    CHECK_FALSE(Status::failure("%s", "").is_ok());
}

}  // namespace
}  // namespace hvkvm::numa::test
