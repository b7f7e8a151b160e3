#include "bench/numa_bench.h"

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "kernel/memory_migration.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "mm/heap.h"
#include "mm/migration.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"
#include "tests/numa_workload.h"

namespace hvkvm::guest::bench {
namespace {

// --- 1. the allocation fast path ---------------------------------------------------------------

constexpr uint32_t kFastPathRounds = 9;
constexpr uint32_t kPairsPerRound = 200'000;

// Per round: tenths of a nanosecond per allocate + free pair.
struct FastPathRounds {
    uint64_t page[kFastPathRounds];
    uint64_t heap[kFastPathRounds];
};

uint64_t time_page_pairs() {
    const uint64_t start = time::now_ns();
    for (uint32_t i = 0; i < kPairsPerRound; ++i) {
        const uint64_t page = mm::allocate_pages(0);
        if (!page) return 0;
        mm::free_pages(page, 0);
    }
    return (time::now_ns() - start) * 10 / kPairsPerRound;
}

uint64_t time_heap_pairs() {
    const uint64_t start = time::now_ns();
    for (uint32_t i = 0; i < kPairsPerRound; ++i) {
        void* object = mm::allocate(64);
        if (!object) return 0;
        mm::free(object);
    }
    return (time::now_ns() - start) * 10 / kPairsPerRound;
}

void measure_fast_path(void* context) {
    auto& rounds = *static_cast<FastPathRounds*>(context);
    time_page_pairs();  // warm the caches
    for (uint32_t round = 0; round < kFastPathRounds; ++round) {  // interleaved, so drifts hit both
        rounds.page[round] = time_page_pairs();
        rounds.heap[round] = time_heap_pairs();
    }
}

void sort(uint64_t* values, uint32_t count) {
    for (uint32_t i = 1; i < count; ++i)
        for (uint32_t j = i; j > 0 && values[j] < values[j - 1]; --j) {
            const uint64_t swap = values[j];
            values[j] = values[j - 1];
            values[j - 1] = swap;
        }
}

void print_rounds(const char* what, uint64_t* tenths, uint32_t count) {
    sort(tenths, count);
    const uint64_t median = tenths[count / 2];
    kprint("  %-38s median %4lu.%lu ns   (rounds %lu.%lu..%lu.%lu)\n", what, median / 10, median % 10, tenths[0] / 10,
           tenths[0] % 10, tenths[count - 1] / 10, tenths[count - 1] % 10);
}

bool run_on(uint32_t cpu, void (*body)(void*), void* context) {
    sched::ThreadOptions options;
    options.name = "numa-bench";
    options.ideal_cpu = cpu;
    options.affinity = 1ull << cpu;
    sched::Thread* thread = sched::create_thread(body, context, options);
    if (!thread) return false;
    sched::join(thread);
    return true;
}

bool fast_path() {
    kprint("fast path: one thread on CPU 0, its ideal node above its low watermark; %u rounds of %u pairs\n",
           kFastPathRounds, kPairsPerRound);
    FastPathRounds rounds{};
    if (!run_on(0, measure_fast_path, &rounds)) return false;
    print_rounds("page: allocate_pages(0) + free_pages", rounds.page, kFastPathRounds);
    print_rounds("heap: allocate(64) + free", rounds.heap, kFastPathRounds);
    return rounds.page[0] != 0 && rounds.heap[0] != 0;
}

// --- 2. where allocations land under load -----------------------------------------------------------

constexpr uint64_t kLoadNs = 300'000'000;

struct Totals {
    uint64_t hit[numa::kMaxNodes], miss[numa::kMaxNodes], local[numa::kMaxNodes], other[numa::kMaxNodes];
};

Totals snapshot() {
    Totals totals{};
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        totals.hit[node] = stats.hit, totals.miss[node] = stats.miss;
        totals.local[node] = stats.local, totals.other[node] = stats.other;
    }
    return totals;
}

// Hundredths of a percent.
uint64_t share(uint64_t part, uint64_t whole) { return whole ? part * 10000 / whole : 0; }

void print_share(const char* what, uint64_t basis_points) {
    kprint("%s %3lu.%02lu%%", what, basis_points / 100, basis_points % 100);
}

// `threads_per_cpu` threads per vCPU, ideal processors round-robin, free to run anywhere.
void load(uint32_t threads_per_cpu, const char* label) {
    const Totals before = snapshot();
    test::ChurnRun run{time::now_ns() + kLoadNs, 0};
    const uint32_t count = threads_per_cpu * smp::online_count();
    sched::Thread* threads[4 * abi::kMaxVcpus] = {};
    for (uint32_t i = 0; i < count; ++i) {
        sched::ThreadOptions options;
        options.name = "numa-load";
        options.ideal_cpu = i % smp::online_count();
        threads[i] = sched::create_thread(test::churn_allocations, &run, options);
    }
    for (uint32_t i = 0; i < count; ++i)
        if (threads[i]) sched::join(threads[i]);
    const Totals after = snapshot();
    uint64_t hit = 0, miss = 0, local = 0, other = 0;
    kprint("  %-32s", label);
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        hit += after.hit[node] - before.hit[node], miss += after.miss[node] - before.miss[node];
        local += after.local[node] - before.local[node], other += after.other[node] - before.other[node];
    }
    print_share(" from the ideal node", share(hit, hit + miss));
    print_share(", by a CPU of the node", share(local, local + other));
    kprint(" (%lu pages%s)\n", hit + miss, run.failures ? ", SOME ALLOCATIONS FAILED" : "");
    kprint("    pages served per node:");
    for (uint32_t node = 0; node < mm::node_count(); ++node)
        kprint(" %u: %lu", node, after.hit[node] - before.hit[node] + after.miss[node] - before.miss[node]);
    kprint("\n");
}

void locality() {
    kprint("locality: page + heap churn (working set %u pages per thread) for %lu ms, ideal processors round-robin\n",
           test::kChurnWorkingSet, kLoadNs / 1'000'000);
    load(1, "1 thread per vCPU:");
    load(3, "3 threads per vCPU (run anywhere):");
    {
        test::NodePressure pressure(0);
        kprint("  node 0 held at its low watermark (%lu pages taken); its fallback order:", pressure.pages_held());
        const numa::NodeOrder& order = mm::fallback_order(0);
        for (uint32_t i = 0; i < order.count; ++i) kprint(" %u", order.nodes[i]);
        kprint("\n");
        load(1, "1 thread per vCPU, node 0 full:");
    }
}

// --- 3. migration ----------------------------------------------------------------------------------

constexpr uint64_t kMigrationPages = 2048;  // 8 MiB
constexpr uint32_t kMigrationRounds = 5;

uint64_t pages_per_second(uint64_t pages, uint64_t ns) { return ns ? pages * 1'000'000'000ull / ns : 0; }

void migration_rate() {
    const uint32_t far = mm::fallback_order(0).nodes[mm::fallback_order(0).count - 1];
    mm::MappedRegion region;
    if (!mm::map_region(region, kMigrationPages * mm::kPageSize, 0)) {
        kprint("migration: no memory for %lu pages\n", kMigrationPages);
        return;
    }
    const uint64_t rate = migration::rate();
    migration::set_rate(0);  // this benchmark moves the pages itself
    uint64_t rounds[kMigrationRounds];
    for (uint32_t round = 0; round < kMigrationRounds; ++round) {
        mm::set_region_home(region, round % 2 ? 0 : far);
        const uint64_t start = time::now_ns();
        uint64_t moved = 0;
        for (;;) {
            const mm::MigrationPass pass = mm::migrate_misplaced_pages(~0ull);
            moved += pass.migrated;
            if (pass.misplaced_left == 0 || pass.migrated == 0) break;
        }
        rounds[round] = pages_per_second(moved, time::now_ns() - start);
    }
    sort(rounds, kMigrationRounds);
    kprint("migration: %lu pages (%lu MiB) between node 0 and node %u\n", kMigrationPages, kMigrationPages >> 8, far);
    kprint("  unlimited (one thread, 16 pages per TLB flush): median %lu pages/s (%lu MiB/s), rounds %lu..%lu\n",
           rounds[kMigrationRounds / 2], rounds[kMigrationRounds / 2] >> 8, rounds[0], rounds[kMigrationRounds - 1]);
    migration::set_rate(rate);
    if (rate) {
        const uint32_t destination = mm::region_home(region) == far ? 0 : far;
        const mm::MigrationStats before = mm::migration_stats();
        mm::set_region_home(region, destination);
        const uint64_t start = time::now_ns();
        while (mm::region_pages_on_node(region, destination) != region.pages && time::now_ns() - start < 10'000'000'000ull)
            sched::sleep_ns(5'000'000);
        const uint64_t took = time::now_ns() - start;
        const mm::MigrationStats after = mm::migration_stats();
        kprint("  by the migration thread, rate limit %lu pages/s: %lu pages/s (%lu pages in %lu ms, %lu passes)\n", rate,
               pages_per_second(after.migrated - before.migrated, took), after.migrated - before.migrated,
               took / 1'000'000, after.passes - before.passes);
    }
    mm::unmap_region(region);
}

}  // namespace

bool run_numa_benchmark() {
    kprint("bench numa: %u node(s), %u vCPUs\n", mm::node_count(), smp::online_count());
    if (!fast_path()) return false;
    if (mm::node_count() < 2) {
        kprint("locality and migration: need 2 or more NUMA nodes (numa.nodes in the config)\n");
        return true;
    }
    locality();
    migration_rate();
    return true;
}

}  // namespace hvkvm::guest::bench
