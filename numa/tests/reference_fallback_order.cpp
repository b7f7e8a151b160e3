#include "reference_fallback_order.h"

#include <algorithm>
#include <map>
#include <tuple>

namespace hvkvm::numa::test {

std::vector<std::vector<uint32_t>> reference_fallback_orders(const std::vector<std::vector<int>>& distance,
                                                             const std::vector<ReferenceNode>& nodes) {
    const uint32_t count = static_cast<uint32_t>(nodes.size());
    std::map<uint32_t, int> load;  // raised for the first node of each distance group, kept across nodes
    std::vector<std::vector<uint32_t>> orders;
    for (uint32_t local = 0; local < count; ++local) {
        std::vector<uint32_t> others;
        for (uint32_t node = 0; node < count; ++node)
            if (node != local && nodes[node].has_memory && distance[local][node] != 255) others.push_back(node);

        // Only the node just placed has its load raised, and it is never a candidate again for this
        // local node, so the loads of the remaining candidates are fixed while this order is built:
        // one sort by (distance + penalties, load, id) gives the same result as repeatedly picking
        // the best remaining candidate.
        auto rank = [&](uint32_t node) {
            int penalties = (node < local ? 1 : 0) + (nodes[node].has_cpus ? 1 : 0);
            return std::make_tuple(distance[local][node] + penalties, load[node], node);
        };
        std::sort(others.begin(), others.end(), [&](uint32_t a, uint32_t b) { return rank(a) < rank(b); });

        std::vector<uint32_t> order;
        if (nodes[local].has_memory) order.push_back(local);
        order.insert(order.end(), others.begin(), others.end());

        int previous_distance = distance[local][local];
        for (uint32_t node : order) {
            if (distance[local][node] != previous_distance) ++load[node];
            previous_distance = distance[local][node];
        }
        orders.push_back(order);
    }
    return orders;
}

}  // namespace hvkvm::numa::test
