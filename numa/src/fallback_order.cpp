#include "hvkvm/numa/fallback_order.h"

namespace hvkvm::numa {
namespace {

// Linux's PENALTY_FOR_NODE_WITH_CPUS (include/linux/topology.h; x86 keeps the default of 1):
// among nodes at equal distance, a node without CPUs takes overflow first, since no local
// allocations compete for its memory.
constexpr uint32_t kPenaltyForNodeWithCpus = 1;
// Linux adds 1 for candidates numbered below the local node ("prefer the next node"), so that
// nodes at equal distance are tried starting above the local node rather than always from 0.
constexpr uint32_t kPenaltyForLowerNode = 1;
// Linux ranks candidates by score * MAX_NUMNODES + node_load. A load never exceeds the node
// count (each node's order raises it at most once per node), so any factor above kMaxNodes makes
// the load a pure tie-breaker, as MAX_NUMNODES (at least 64 on x86-64) does in Linux.
constexpr uint32_t kLoadScale = kMaxNodes + 1;

class FallbackBuilder {
public:
    explicit FallbackBuilder(const FallbackInput& input) : input_(input) {}

    // Linux's build_zonelists for one node: repeatedly take the best unused candidate; the first
    // node of each new distance group has its load raised, which pushes it behind its equals in
    // the orders of the nodes built after this one (the round-robin).
    NodeOrder build(uint32_t local) {
        NodeOrder order;
        NodeMask used = 0;
        uint32_t previous = local;
        for (uint32_t node = next_best(local, used); node != kNoNode; node = next_best(local, used)) {
            used |= node_bit(node);
            if (distance(local, node) != distance(local, previous)) ++load_[node];
            order.nodes[order.count++] = static_cast<uint8_t>(node);
            previous = node;
        }
        return order;
    }

private:
    uint32_t distance(uint32_t from, uint32_t to) const { return input_.distances->at(from, to); }

    // Only nodes with memory can satisfy an allocation, and memory the local CPUs cannot reach
    // (distance 255) must never be handed to them.
    bool is_candidate(uint32_t local, uint32_t node) const {
        return contains(input_.with_memory, node) && is_reachable(input_.distances->at(local, node));
    }

    uint32_t score(uint32_t local, uint32_t node) const {
        uint32_t score = distance(local, node);
        if (node < local) score += kPenaltyForLowerNode;
        if (contains(input_.with_cpus, node)) score += kPenaltyForNodeWithCpus;
        return score * kLoadScale + load_[node];
    }

    // Linux's find_next_best_node: the local node first (if it has memory), then the lowest
    // score, the lowest node id among equal scores; kNoNode when none is left.
    uint32_t next_best(uint32_t local, NodeMask used) const {
        if (!contains(used, local) && contains(input_.with_memory, local)) return local;
        uint32_t best = kNoNode;
        uint32_t best_score = 0;
        for (uint32_t node = 0; node < input_.node_count; ++node) {
            if (contains(used, node) || !is_candidate(local, node)) continue;
            uint32_t candidate_score = score(local, node);
            if (best == kNoNode || candidate_score < best_score) {
                best = node;
                best_score = candidate_score;
            }
        }
        return best;
    }

    const FallbackInput& input_;
    uint32_t load_[kMaxNodes] = {};  // Linux's node_load[], shared by every node's build
};

}  // namespace

FallbackOrders compute_fallback_orders(const FallbackInput& input) {
    FallbackOrders orders;
    if (input.distances == nullptr || input.node_count > kMaxNodes) return orders;  // no nodes
    orders.node_count = input.node_count;
    FallbackBuilder builder(input);
    for (uint32_t local = 0; local < input.node_count; ++local) orders.of_node[local] = builder.build(local);
    return orders;
}

FallbackOrders compute_fallback_orders(const Topology& topology) {
    return compute_fallback_orders(FallbackInput{topology.node_count, topology.nodes_with_memory(),
                                                 topology.nodes_with_cpus(), &topology.distances});
}

}  // namespace hvkvm::numa
