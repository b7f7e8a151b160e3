#include "tests/numa_workload.h"

#include "arch/x86_64/time.h"
#include "mm/heap.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest::test {

uint64_t zone_free_pages(uint32_t node) {
    const mm::NodeStats stats = mm::node_stats(node);
    return stats.free_pages - stats.cached_pages;
}

NodePressure::NodePressure(uint32_t node) : node_(node) { top_up(); }

NodePressure::~NodePressure() {
    while (blocks_) {
        Block* next = blocks_->next;
        mm::free_pages(reinterpret_cast<uint64_t>(blocks_), blocks_->order);
        blocks_ = next;
    }
}

void NodePressure::hold(uint64_t address, uint32_t order) {
    auto* block = reinterpret_cast<Block*>(address);
    block->next = blocks_;
    block->order = order;
    blocks_ = block;
    pages_ += uint64_t{1} << order;
}

void NodePressure::top_up() {
    mm::drain_page_cache();
    const uint64_t low = mm::node_stats(node_).low_watermark;
    while (zone_free_pages(node_) > low) {
        if (uint64_t block = mm::allocate_pages_on_node(1, node_, mm::NodePolicy::kOnly)) {
            hold(block, 1);
            continue;
        }
        // Only single pages left: those pass through this CPU's cache, which is drained again.
        const uint64_t page = mm::allocate_pages_on_node(0, node_, mm::NodePolicy::kOnly);
        if (!page) break;
        hold(page, 0);
        mm::drain_page_cache();
    }
}

void churn_allocations(void* context) {
    constexpr uint32_t kWorkingSet = kChurnWorkingSet;
    auto& run = *static_cast<ChurnRun*>(context);
    uint64_t pages[kWorkingSet] = {};
    void* objects[kWorkingSet] = {};
    for (uint32_t round = 0; time::now_ns() < run.deadline_ns; ++round) {
        const uint32_t slot = round % kWorkingSet;
        if (pages[slot]) mm::free_pages(pages[slot], 0);
        mm::free(objects[slot]);
        pages[slot] = mm::allocate_pages(0);
        objects[slot] = mm::allocate(96);
        if (!pages[slot] || !objects[slot]) __atomic_fetch_add(&run.failures, 1, __ATOMIC_RELAXED);
    }
    for (uint32_t slot = 0; slot < kWorkingSet; ++slot) {
        if (pages[slot]) mm::free_pages(pages[slot], 0);
        mm::free(objects[slot]);
    }
}

}  // namespace hvkvm::guest::test
