// A second, deliberately different statement of the fallback-order rules, used only to check
// compute_fallback_orders(). Written from the rules in docs/numa.md, not from the production code:
// standard containers instead of fixed arrays, one sort per node instead of a repeated
// best-candidate search, and the rank as a tuple instead of a scaled integer.
#pragma once

#include <cstdint>
#include <vector>

namespace hvkvm::numa::test {

struct ReferenceNode {
    bool has_memory = true;
    bool has_cpus = true;
};

// distance[from][to] with SLIT values; orders[local] lists the nodes local falls back to.
std::vector<std::vector<uint32_t>> reference_fallback_orders(const std::vector<std::vector<int>>& distance,
                                                             const std::vector<ReferenceNode>& nodes);

}  // namespace hvkvm::numa::test
