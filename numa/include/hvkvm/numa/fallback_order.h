// The order in which each node's memory allocations fall back to other nodes: the local node
// first, then the others nearest first, spread round-robin among nodes at equal distance so
// that one node does not take every node's overflow. This is the order Linux gives its
// zonelists (build_zonelists / find_next_best_node in mm/page_alloc.c); docs/numa.md lists the
// rules and where this departs from Linux (unreachable nodes are left out).
//
// The orders of all nodes are computed together because they are not independent: each node's
// order raises a per-node "load" that breaks ties in the orders of nodes computed after it
// (Linux builds them in node-id order from loads reset to zero, and so does this).
#pragma once

#include <stdint.h>

#include "hvkvm/numa/distance.h"
#include "hvkvm/numa/limits.h"
#include "hvkvm/numa/topology.h"

namespace hvkvm::numa {

struct NodeOrder {
    uint32_t count = 0;
    uint8_t nodes[kMaxNodes] = {};
};

struct FallbackOrders {
    uint32_t node_count = 0;
    NodeOrder of_node[kMaxNodes];

    const NodeOrder& operator[](uint32_t local_node) const { return of_node[local_node]; }
};

// What the order depends on: the distances, which nodes have memory (only those can appear) and
// which have CPUs (slightly penalised, as in Linux, so that CPU-less memory nodes absorb
// overflow first among equals). Requires valid distances (check_distances) for node_count nodes.
struct FallbackInput {
    uint32_t node_count = 0;
    NodeMask with_memory = 0;
    NodeMask with_cpus = 0;
    const DistanceMatrix* distances = nullptr;
};

FallbackOrders compute_fallback_orders(const FallbackInput& input);
// For a validated topology.
FallbackOrders compute_fallback_orders(const Topology& topology);

}  // namespace hvkvm::numa
