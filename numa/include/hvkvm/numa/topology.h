// The virtual NUMA topology of a guest: which vCPUs and which guest-physical memory belong to
// each node, and the distances between nodes. The VMM builds it from its config and writes it
// into ACPI tables (SRAT, SLIT); the guest reads it back from them. Plain data with fixed
// storage so that the freestanding guest can hold it without an allocator.
#pragma once

#include <stdint.h>

#include "hvkvm/numa/cpu_set.h"
#include "hvkvm/numa/distance.h"
#include "hvkvm/numa/limits.h"
#include "hvkvm/numa/status.h"

namespace hvkvm::numa {

inline constexpr uint64_t kMemoryGranule = 4096;  // ranges are page-aligned

struct MemoryRange {
    uint64_t base = 0;
    uint64_t size = 0;
    uint32_t node = 0;

    constexpr uint64_t end() const { return base + size; }
};

struct Topology {
    uint32_t node_count = 0;
    CpuSet node_cpus[kMaxNodes];
    uint32_t memory_range_count = 0;
    MemoryRange memory_ranges[kMaxMemoryRanges];
    DistanceMatrix distances;

    // Queries (on a validated topology).
    uint32_t node_of_cpu(uint32_t cpu) const;  // kNoNode if no node has it
    uint64_t node_memory_bytes(uint32_t node) const;
    NodeMask nodes_with_memory() const;
    NodeMask nodes_with_cpus() const;
    uint32_t cpu_count() const;
};

// Checks everything a consumer relies on, and returns the first problem:
//   - 1..kMaxNodes nodes, distances valid (check_distances with `symmetry`);
//   - the vCPUs of all nodes are exactly 0..vcpu_count-1, each in exactly one node;
//   - 1..kMaxMemoryRanges memory ranges, each non-empty, page-aligned, not wrapping, on an
//     existing node, and no two overlapping;
//   - every node has vCPUs or memory (a node with neither describes nothing), and some node
//     has memory.
Status validate_topology(const Topology& topology, uint32_t vcpu_count, Symmetry symmetry);

}  // namespace hvkvm::numa
