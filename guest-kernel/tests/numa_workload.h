// For NUMA tests and the NUMA benchmark: holding a node at its low watermark (the point where the
// page allocator starts sending that node's allocations to the next node in its fallback order),
// and an allocation workload.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::test {

// Takes a node's free pages until its zone is at (or just below) its low watermark, and gives
// them back when destroyed. The pages are taken two at a time straight from the zone (order-1
// blocks bypass the per-CPU caches), and every CPU's cache is drained first, so that no cached
// page of the node is left for a later allocation.
class NodePressure {
public:
    explicit NodePressure(uint32_t node);
    ~NodePressure();
    NodePressure(const NodePressure&) = delete;
    NodePressure& operator=(const NodePressure&) = delete;

    uint64_t pages_held() const { return pages_; }
    // Takes more, should the node have gained free pages since (other threads freeing).
    void top_up();

private:
    struct Block {
        Block* next;
        uint32_t order;
    };
    void hold(uint64_t address, uint32_t order);

    uint32_t node_;
    Block* blocks_ = nullptr;
    uint64_t pages_ = 0;
};

// Free pages in the node's zone (not counting per-CPU caches).
uint64_t zone_free_pages(uint32_t node);

// Keeps a working set of kChurnWorkingSet single pages and as many 96-byte heap objects turning
// over until the deadline (a thread body; several threads may share one ChurnRun).
inline constexpr uint32_t kChurnWorkingSet = 64;
struct ChurnRun {
    uint64_t deadline_ns;
    uint32_t failures;  // allocations that returned nothing
};
void churn_allocations(void* run);

}  // namespace hvkvm::guest::test
