// The work queue, and allocation from every CPU at once.
#include "arch/x86_64/per_cpu.h"
#include "kernel/sched/scheduler.h"
#include "kernel/smp/smp.h"
#include "kernel/sched/mutex.h"
#include "kernel/test/ktest.h"
#include "arch/x86_64/time.h"
#include "kernel/work/work_queue.h"
#include "lib/random.h"
#include "mm/heap.h"
#include "mm/page_allocator.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

constexpr uint32_t kItemsPerCpu = 64;

struct CountedItem {
    work::WorkItem item;
    uint32_t runs;
    Semaphore* done;
};

void count_run(work::WorkItem& item) {
    auto& counted = reinterpret_cast<CountedItem&>(item);  // `item` is the first member
    __atomic_fetch_add(&counted.runs, 1, __ATOMIC_RELAXED);
    counted.done->signal();
}

}  // namespace

KTEST(work, queued_items_run_exactly_once) {
    const uint32_t cpus = smp::online_count();
    static CountedItem items[abi::kMaxVcpus * kItemsPerCpu];
    Semaphore done(0);
    const work::WorkStats before = work::stats();
    for (uint32_t i = 0; i < cpus * kItemsPerCpu; ++i) {
        items[i] = CountedItem{{count_run, {}}, 0, &done};
        work::queue_on(test::nth_online_cpu(i), items[i].item);
    }
    for (uint32_t i = 0; i < cpus * kItemsPerCpu; ++i) KASSERT(done.wait_until(time::now_ns() + 5'000'000'000ull));
    for (uint32_t i = 0; i < cpus * kItemsPerCpu; ++i) KEXPECT_EQ(items[i].runs, 1u);
    const work::WorkStats after = work::stats();
    KEXPECT_EQ(after.queued - before.queued, uint64_t{cpus} * kItemsPerCpu);
}

namespace {

uint32_t failures;

void allocate_and_free_randomly(void*, uint32_t index) {
    Random random(1000 + index);
    constexpr uint32_t kHeld = 64;
    uint64_t pages[kHeld] = {};
    uint32_t orders[kHeld] = {};
    void* objects[kHeld] = {};
    for (uint32_t round = 0; round < 5000; ++round) {
        const uint32_t slot = static_cast<uint32_t>(random.below(kHeld));
        if (pages[slot]) {
            if (*reinterpret_cast<uint64_t*>(pages[slot]) != pages[slot]) __atomic_fetch_add(&failures, 1, __ATOMIC_RELAXED);
            mm::free_pages(pages[slot], orders[slot]);
            pages[slot] = 0;
        } else {
            orders[slot] = static_cast<uint32_t>(random.below(3));
            pages[slot] = mm::allocate_pages(orders[slot]);
            if (pages[slot]) *reinterpret_cast<uint64_t*>(pages[slot]) = pages[slot];
        }
        if (objects[slot]) {
            mm::free(objects[slot]);
            objects[slot] = nullptr;
        } else {
            objects[slot] = mm::allocate(16 + random.below(3000));
        }
    }
    for (uint32_t slot = 0; slot < kHeld; ++slot) {
        if (pages[slot]) mm::free_pages(pages[slot], orders[slot]);
        mm::free(objects[slot]);
    }
}

}  // namespace

KTEST(mm, concurrent_allocation_on_every_cpu_without_leaks) {
    mm::drain_page_cache();
    const mm::PageStats pages_before = mm::page_stats();
    const mm::HeapStats heap_before = mm::heap_stats();
    failures = 0;
    KASSERT(test::run_in_threads(smp::online_count() * 2, test::Placement::kOnePerCpu, allocate_and_free_randomly, nullptr));
    mm::drain_page_cache();
    const mm::HeapStats heap_after = mm::heap_stats();
    KEXPECT_EQ(failures, 0u);
    KEXPECT_EQ(heap_after.live_allocations, heap_before.live_allocations);
    KEXPECT_EQ(mm::page_stats().free_pages + (heap_after.slab_pages - heap_before.slab_pages), pages_before.free_pages);
    KEXPECT(mm::page_allocator_consistent());
}

}  // namespace hvkvm::guest
