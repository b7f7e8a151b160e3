// Small builders for the NUMA tests.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "hvkvm/numa/topology.h"

namespace hvkvm::numa::test {

// Every off-diagonal entry `remote`, the diagonal 10.
inline DistanceMatrix uniform_distances(uint32_t node_count, uint8_t remote) {
    DistanceMatrix distances;
    for (uint32_t from = 0; from < node_count; ++from)
        for (uint32_t to = 0; to < node_count; ++to) distances.set(from, to, from == to ? kLocalDistance : remote);
    return distances;
}

inline DistanceMatrix distances_from_rows(std::initializer_list<std::initializer_list<int>> rows) {
    DistanceMatrix distances;
    uint32_t from = 0;
    for (const auto& row : rows) {
        uint32_t to = 0;
        for (int value : row) distances.set(from, to++, static_cast<uint8_t>(value));
        ++from;
    }
    return distances;
}

// `node_count` nodes with `cpus_per_node` vCPUs and one 64 MiB range each, distances `remote`.
inline Topology simple_topology(uint32_t node_count, uint32_t cpus_per_node = 1, uint8_t remote = 20) {
    Topology topology;
    topology.node_count = node_count;
    for (uint32_t node = 0; node < node_count; ++node) {
        topology.node_cpus[node] = CpuSet::range(node * cpus_per_node, cpus_per_node);
        topology.memory_ranges[node] = MemoryRange{uint64_t{node} << 26, uint64_t{1} << 26, node};
    }
    topology.memory_range_count = node_count;
    topology.distances = uniform_distances(node_count, remote);
    return topology;
}

inline std::string message_of(const Status& status) { return status.message(); }

}  // namespace hvkvm::numa::test
