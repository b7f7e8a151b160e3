// Virtual NUMA in the guest: the topology read from ACPI, where memory comes from (the ideal
// node, even while running elsewhere; the fallback order under pressure), node-local heap pools,
// stacks and page tables, scheduler placement, page migration, and the per-node counters.
// The integration tests run these with 2 and 4 nodes; on one node most of them skip.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/time.h"
#include "kernel/memory_migration.h"
#include "kernel/sched/scheduler.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "kernel/work/work_queue.h"
#include "lib/bits.h"
#include "mm/heap.h"
#include "mm/migration.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"
#include "mm/paging.h"
#include "tests/numa_workload.h"
#include "tests/test_threads.h"

extern "C" char __text_start[];

namespace hvkvm::guest {
namespace {

constexpr const char* kNeedsTwoNodes = "needs 2 NUMA nodes with vCPUs and 8 MiB free each (numa.nodes in the config)";
constexpr uint64_t kRoomPages = 2048;  // 8 MiB above the low watermark: what the tests allocate, with margin

uint64_t one_cpu(uint32_t cpu) { return 1ull << cpu; }

// The nodes the tests can use, as a mask: with online vCPUs, and room to allocate well above the
// low watermark (a node barely larger than the kernel image is at its watermark from the start).
uint32_t nodes_with_cpus() {
    uint32_t nodes = 0;
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        if ((mm::cpus_of_node(node).bits() & smp::online_mask()) && stats.free_pages > stats.low_watermark + kRoomPages)
            nodes |= 1u << node;
    }
    return nodes;
}

uint32_t first_cpu_of(uint32_t node) {
    return static_cast<uint32_t>(__builtin_ctzll(mm::cpus_of_node(node).bits() & smp::online_mask()));
}

uint32_t current_cpu() {
    platform::InterruptsDisabled no_interrupts;
    return this_cpu().index;
}

// Runs body(context) in a new thread with this ideal processor and affinity, and waits for it.
bool run_thread(uint32_t ideal_cpu, uint64_t affinity, void (*body)(void*), void* context, const char* name = "numa-test") {
    sched::ThreadOptions options;
    options.name = name;
    options.ideal_cpu = ideal_cpu;
    options.affinity = affinity;
    sched::Thread* thread = sched::create_thread(body, context, options);
    if (!thread) return false;
    sched::join(thread);
    return true;
}

// Page-sized blocks chained through themselves, so a test needs no other memory to hold them.
struct PageList {
    uint64_t head = 0;
    uint64_t count = 0;
    void push(uint64_t page) {
        *reinterpret_cast<uint64_t*>(page) = head;
        head = page;
        ++count;
    }
    void free_all() {
        while (head) {
            const uint64_t next = *reinterpret_cast<uint64_t*>(head);
            mm::free_pages(head, 0);
            head = next;
        }
        count = 0;
    }
};

// --- where allocations land --------------------------------------------------------------------

struct PlacementRun {
    uint32_t expected_node;
    uint32_t ran_on_node;
    uint32_t pages_allocated;
    uint32_t pages_elsewhere;
    uint32_t objects_elsewhere;
    uint32_t large_elsewhere;
};

constexpr uint32_t kPlacementPages = 256;
constexpr uint32_t kPlacementObjects = 128;

void allocate_and_check_placement(void* context) {
    auto& run = *static_cast<PlacementRun*>(context);
    {
        platform::InterruptsDisabled no_interrupts;
        run.ran_on_node = this_cpu().node;
    }
    PageList pages;
    for (uint32_t i = 0; i < kPlacementPages; ++i) {
        const uint64_t page = mm::allocate_pages(i % 8 == 0 ? 2 : 0);  // some multi-page blocks too
        if (!page) break;
        run.pages_elsewhere += mm::node_of_address(page) != run.expected_node;
        ++run.pages_allocated;
        if (i % 8 == 0) mm::free_pages(page, 2);
        else pages.push(page);
    }
    pages.free_all();
    void* objects[kPlacementObjects];
    for (uint32_t i = 0; i < kPlacementObjects; ++i) {
        objects[i] = mm::allocate(64 + (i % 4) * 200);
        run.objects_elsewhere += !objects[i] || mm::node_of_address(reinterpret_cast<uint64_t>(objects[i]) & ~0xfffull) != run.expected_node;
    }
    for (void* object : objects) mm::free(object);
    void* large = mm::allocate(5 * mm::kPageSize);
    run.large_elsewhere += !large || mm::node_of_address(reinterpret_cast<uint64_t>(large)) != run.expected_node;
    mm::free(large);
}

}  // namespace

KTEST(numa, topology_matches_the_acpi_tables) {
    const uint32_t nodes = mm::node_count();
    KASSERT(nodes >= 1 && nodes <= numa::kMaxNodes);
    uint64_t seen = 0;
    uint64_t memory = 0;
    for (uint32_t node = 0; node < nodes; ++node) {
        const uint64_t cpus = mm::cpus_of_node(node).bits();
        KEXPECT_EQ(seen & cpus, 0u);  // no CPU in two nodes
        seen |= cpus;
        for (uint64_t rest = cpus; rest; rest &= rest - 1) {
            const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
            KEXPECT_EQ(mm::node_of_cpu(cpu), node);
            KEXPECT_EQ(per_cpu(cpu).node, node);
        }
        KEXPECT_EQ(mm::node_distance(node, node), 10u);
        memory += mm::node_memory_bytes(node);
        // The fallback order: this node first (it has memory), then never nearer than before.
        const numa::NodeOrder& order = mm::fallback_order(node);
        KASSERT(order.count >= 1);
        if (mm::node_memory_bytes(node)) KEXPECT_EQ(order.nodes[0], node);
        for (uint32_t i = 1; i < order.count; ++i)
            KEXPECT(mm::node_distance(node, order.nodes[i]) >= mm::node_distance(node, order.nodes[i - 1]));
    }
    KEXPECT_EQ(seen, smp::online_mask());  // every vCPU in exactly one node
    KEXPECT_EQ(mm::page_stats().zone_count, nodes);
    uint64_t managed = 0;
    for (uint32_t node = 0; node < nodes; ++node) managed += mm::node_stats(node).managed_pages;
    KEXPECT_EQ(managed, mm::page_stats().managed_pages);
    KEXPECT(managed * mm::kPageSize <= memory);
}

KTEST(numa, allocations_come_from_the_ideal_node) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        if (!(nodes_with_cpus() & (1u << node))) continue;
        const uint32_t cpu = first_cpu_of(node);
        const mm::NodeStats before = mm::node_stats(node);
        PlacementRun run{node, 0, 0, 0, 0, 0};
        KASSERT(run_thread(cpu, one_cpu(cpu), allocate_and_check_placement, &run));
        const mm::NodeStats after = mm::node_stats(node);
        KEXPECT_EQ(run.ran_on_node, node);
        KEXPECT_EQ(run.pages_allocated, kPlacementPages);
        KEXPECT_EQ(run.pages_elsewhere, 0u);
        KEXPECT_EQ(run.objects_elsewhere, 0u);
        KEXPECT_EQ(run.large_elsewhere, 0u);
        KEXPECT(after.hit - before.hit >= kPlacementPages);   // counted as hits...
        KEXPECT(after.local - before.local >= kPlacementPages);  // ...by a CPU of the node
    }
}

KTEST(numa, memory_comes_from_the_ideal_node_while_running_elsewhere) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    // Ideal processor on one node, allowed to run only on another's CPU.
    const uint32_t home = 31 - static_cast<uint32_t>(__builtin_clz(nodes_with_cpus()));
    const uint32_t away = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus()));
    const mm::NodeStats before = mm::node_stats(home);
    PlacementRun run{home, 0, 0, 0, 0, 0};
    KASSERT(run_thread(first_cpu_of(home), one_cpu(first_cpu_of(away)), allocate_and_check_placement, &run));
    const mm::NodeStats after = mm::node_stats(home);
    KEXPECT_EQ(run.ran_on_node, away);
    KEXPECT_EQ(run.pages_elsewhere, 0u);
    KEXPECT_EQ(run.objects_elsewhere, 0u);
    KEXPECT_EQ(run.large_elsewhere, 0u);
    KEXPECT(after.hit - before.hit >= kPlacementPages);
    KEXPECT(after.other - before.other >= kPlacementPages);  // allocated here by another node's CPU
}

KTEST(numa, explicit_node_allocations_and_address_lookup) {
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        if (mm::node_stats(node).managed_pages == 0) continue;
        const uint64_t page = mm::allocate_pages_on_node(0, node, mm::NodePolicy::kOnly);
        KASSERT(page != 0);
        KEXPECT_EQ(mm::node_of_address(page), node);
        KEXPECT_EQ(mm::node_of_address(page + mm::kPageSize - 1), node);
        mm::free_pages(page, 0);
        const uint64_t block = mm::allocate_pages_on_node(3, node, mm::NodePolicy::kOnly);
        KASSERT(block != 0);
        KEXPECT_EQ(mm::node_of_address(block + 7 * mm::kPageSize), node);
        mm::free_pages(block, 3);
        void* object = mm::allocate_on_node(48, node);
        KASSERT(object != nullptr);
        KEXPECT_EQ(mm::node_of_address(reinterpret_cast<uint64_t>(object)), node);
        mm::free(object);
    }
    // Memory the allocator does not manage has no allocator node (the SRAT still places it).
    KEXPECT_EQ(mm::node_of_address(reinterpret_cast<uint64_t>(__text_start)), mm::kNoNode);
    KEXPECT(mm::srat_node_of(reinterpret_cast<uint64_t>(__text_start)) != mm::kNoNode);
    KEXPECT_EQ(mm::node_of_address(abi::kLocalApicGpa), mm::kNoNode);
    KEXPECT_EQ(mm::srat_node_of(abi::kLocalApicGpa), mm::kNoNode);
}

namespace {

struct PressureRun {
    uint32_t node;
    uint32_t next;          // fallback_order(node)[1]
    uint32_t after_next;    // fallback_order(node)[2], or kNoNode
    uint32_t on_next;
    uint32_t on_after_next;
    uint32_t elsewhere;
    uint32_t while_above_low_on_home;
};

constexpr uint32_t kPressurePages = 64;

void allocate_under_pressure(void* context) {
    auto& run = *static_cast<PressureRun*>(context);
    PageList pages;
    {
        // Above the low watermark: local.
        const uint64_t page = mm::allocate_pages(0);
        run.while_above_low_on_home = page && mm::node_of_address(page) == run.node;
        if (page) mm::free_pages(page, 0);
    }
    test::NodePressure home(run.node);
    for (uint32_t i = 0; i < kPressurePages; ++i) {
        const uint64_t page = mm::allocate_pages(0);
        if (!page) break;
        run.on_next += mm::node_of_address(page) == run.next;
        pages.push(page);
    }
    if (run.after_next != mm::kNoNode) {
        test::NodePressure next(run.next);
        for (uint32_t i = 0; i < kPressurePages; ++i) {
            const uint64_t page = mm::allocate_pages(0);
            if (!page) break;
            run.on_after_next += mm::node_of_address(page) == run.after_next;
            pages.push(page);
        }
    }
    pages.free_all();
}

}  // namespace

KTEST(numa, under_pressure_allocations_follow_the_fallback_order) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    const uint32_t node = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus()));
    const numa::NodeOrder& order = mm::fallback_order(node);
    KASSERT(order.count >= 2 && order.nodes[0] == node);
    PressureRun run{node, order.nodes[1], order.count >= 3 ? order.nodes[2] : mm::kNoNode, 0, 0, 0, 0};
    const mm::NodeStats home_before = mm::node_stats(node);
    const mm::NodeStats next_before = mm::node_stats(run.next);
    const uint32_t cpu = first_cpu_of(node);
    KASSERT(run_thread(cpu, one_cpu(cpu), allocate_under_pressure, &run));
    KEXPECT(run.while_above_low_on_home);
    KEXPECT_EQ(run.on_next, kPressurePages);
    if (run.after_next != mm::kNoNode) KEXPECT_EQ(run.on_after_next, kPressurePages);
    KEXPECT(mm::node_stats(node).foreign - home_before.foreign >= kPressurePages);
    KEXPECT(mm::node_stats(run.next).miss - next_before.miss >= kPressurePages);
    KEXPECT(mm::page_allocator_consistent());
}

KTEST(numa, allocations_stay_local_under_load) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    uint64_t hits = 0, misses = 0;
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        hits -= stats.hit;
        misses -= stats.miss;
    }
    // Two threads per CPU, each with that CPU as its ideal processor but free to run anywhere: with
    // more threads than CPUs, some run away from their ideal node now and then.
    test::ChurnRun run{time::now_ns() + 150'000'000, 0};
    const uint32_t count = 2 * smp::online_count();
    sched::Thread* threads[2 * abi::kMaxVcpus] = {};
    for (uint32_t i = 0; i < count; ++i) {
        sched::ThreadOptions options;
        options.name = "numa-churn";
        options.ideal_cpu = test::nth_online_cpu(i);
        threads[i] = sched::create_thread(test::churn_allocations, &run, options);
    }
    for (uint32_t i = 0; i < count; ++i) {
        KEXPECT(threads[i] != nullptr);
        if (threads[i]) sched::join(threads[i]);
    }
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        hits += stats.hit;
        misses += stats.miss;
        KEXPECT(stats.free_pages > stats.low_watermark);  // the condition of the rule below
    }
    KEXPECT_EQ(run.failures, 0u);
    KEXPECT(hits > 10000);
    KEXPECT(hits * 100 >= (hits + misses) * 99);  // >= 99% from the ideal node
}

KTEST(numa, counters_add_up) {
    uint64_t hit = 0, miss = 0, foreign = 0, local = 0, other = 0;
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        hit += stats.hit, miss += stats.miss, foreign += stats.foreign, local += stats.local, other += stats.other;
    }
    // Snapshots of counters that other CPUs keep raising: allow what may happen between the reads.
    KEXPECT(hit + miss > 0);
    KEXPECT(miss + 64 >= foreign && foreign + 64 >= miss);            // every miss is some node's foreign
    KEXPECT(hit + miss + 64 >= local + other && local + other + 64 >= hit + miss);  // and local or other
}

// --- heap, stacks, page tables -----------------------------------------------------------------

namespace {

struct LocalityRun {
    uint32_t node;
    uint32_t thread_elsewhere;
    uint32_t stack_pages_elsewhere;
    uint32_t stack_tables_elsewhere;
    uint32_t region_pages_elsewhere;
    uint32_t region_tables_elsewhere;
    bool region_mapped;
};

// Tables below the root (the root is shared by every node).
uint32_t tables_elsewhere(uint64_t virtual_address, uint32_t node) {
    uint64_t tables[4];
    const uint32_t count = mm::page_tables_of(virtual_address, tables);
    uint32_t elsewhere = 0;
    for (uint32_t i = 1; i < count; ++i) elsewhere += mm::node_of_address(tables[i]) != node;
    return elsewhere + (count != 4);  // a stack page is mapped by 4 levels of tables
}

void check_own_memory(void* context) {
    auto& run = *static_cast<LocalityRun*>(context);
    sched::Thread* self = sched::current_thread();
    run.thread_elsewhere = mm::node_of_address(reinterpret_cast<uint64_t>(self)) != run.node;
    for (uint64_t page = self->stack.bottom; page < self->stack.top; page += mm::kPageSize) {
        run.stack_pages_elsewhere += mm::node_of_address(mm::translate(page)) != run.node;
        run.stack_tables_elsewhere += tables_elsewhere(page, run.node);
    }
    mm::MappedRegion region;
    run.region_mapped = sched::map_thread_memory(region, 16 * mm::kPageSize);
    if (!run.region_mapped) return;
    run.region_pages_elsewhere = static_cast<uint32_t>(region.pages - mm::region_pages_on_node(region, run.node));
    for (uint64_t i = 0; i < region.pages; ++i) run.region_tables_elsewhere += tables_elsewhere(region.base + i * mm::kPageSize, run.node);
    sched::unmap_thread_memory(region);
}

}  // namespace

KTEST(numa, threads_stacks_and_page_tables_are_on_the_ideal_node) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        if (!(nodes_with_cpus() & (1u << node))) continue;
        LocalityRun run{node, 0, 0, 0, 0, 0, false};
        // Created from whatever CPU runs this test: the new thread's memory follows its ideal node.
        KASSERT(run_thread(first_cpu_of(node), sched::kAllCpus, check_own_memory, &run));
        KEXPECT_EQ(run.thread_elsewhere, 0u);
        KEXPECT_EQ(run.stack_pages_elsewhere, 0u);
        KEXPECT_EQ(run.stack_tables_elsewhere, 0u);
        KEXPECT(run.region_mapped);
        KEXPECT_EQ(run.region_pages_elsewhere, 0u);
        KEXPECT_EQ(run.region_tables_elsewhere, 0u);
    }
}

// --- scheduler ------------------------------------------------------------------------------------

namespace {

struct Spinner {
    uint32_t running;
    uint32_t stop;
};

void spin_until_stopped(void* context) {
    auto& spinner = *static_cast<Spinner*>(context);
    __atomic_store_n(&spinner.running, 1, __ATOMIC_RELEASE);
    while (!__atomic_load_n(&spinner.stop, __ATOMIC_ACQUIRE)) x86::pause();
}

struct Probe {
    uint32_t cpu;
    uint32_t memory_node;
    uint64_t page;
};

void note_placement(void* context) {
    auto& probe = *static_cast<Probe*>(context);
    probe.cpu = current_cpu();
    probe.page = mm::allocate_pages(0);
}

struct PlacementTest {
    uint32_t node;        // a node with 2+ CPUs
    uint32_t ideal;       // its first CPU: kept busy
    uint32_t placed_in_node;
    uint32_t memory_elsewhere;
    uint32_t spilled_elsewhere;  // with the whole node busy: placed off the node...
    uint32_t spilled_memory_home;  // ...with memory still from the ideal node
    uint32_t rounds;
};

bool wait_until_running(const Spinner& spinner) {
    const uint64_t give_up = time::now_ns() + 2'000'000'000ull;
    while (!__atomic_load_n(&spinner.running, __ATOMIC_ACQUIRE))
        if (time::now_ns() > give_up) return false;
    return true;
}

void wait_until_idle(uint64_t cpus) {
    const uint64_t give_up = time::now_ns() + 500'000'000ull;
    for (uint64_t rest = cpus; rest; rest &= rest - 1)
        while (!sched::cpu_is_idle(static_cast<uint32_t>(__builtin_ctzll(rest))) && time::now_ns() < give_up) x86::pause();
}

// Runs on a CPU of another node: keeps the ideal processor busy and checks where threads with that
// ideal processor go, then keeps the whole node busy.
void check_scheduler_placement(void* context) {
    auto& test = *static_cast<PlacementTest*>(context);
    const uint64_t node_cpus = mm::cpus_of_node(test.node).bits() & smp::online_mask();
    sched::Thread* spinners[abi::kMaxVcpus] = {};
    Spinner spinner_state[abi::kMaxVcpus] = {};
    auto start_spinner = [&](uint32_t cpu) {
        sched::ThreadOptions options;
        options.name = "numa-spinner";
        options.ideal_cpu = cpu;
        options.affinity = one_cpu(cpu);
        spinners[cpu] = sched::create_thread(spin_until_stopped, &spinner_state[cpu], options);
        return spinners[cpu] && wait_until_running(spinner_state[cpu]);
    };
    if (!start_spinner(test.ideal)) return;
    for (uint32_t round = 0; round < test.rounds; ++round) {
        wait_until_idle(smp::online_mask() & ~one_cpu(test.ideal) & ~one_cpu(current_cpu()));
        Probe probe{~0u, 0, 0};
        if (!run_thread(test.ideal, sched::kAllCpus, note_placement, &probe)) break;
        test.placed_in_node += (node_cpus >> probe.cpu) & 1;
        test.memory_elsewhere += !probe.page || mm::node_of_address(probe.page) != test.node;
        if (probe.page) mm::free_pages(probe.page, 0);
    }
    // Now every CPU of the node is busy: the thread runs elsewhere, its memory still comes from home.
    bool all_busy = true;
    for (uint64_t rest = node_cpus & ~one_cpu(test.ideal); rest; rest &= rest - 1)
        all_busy &= start_spinner(static_cast<uint32_t>(__builtin_ctzll(rest)));
    if (all_busy) {
        for (uint32_t round = 0; round < test.rounds; ++round) {
            Probe probe{~0u, 0, 0};
            if (!run_thread(test.ideal, sched::kAllCpus, note_placement, &probe)) break;
            test.spilled_elsewhere += !((node_cpus >> probe.cpu) & 1);
            test.spilled_memory_home += probe.page && mm::node_of_address(probe.page) == test.node;
            if (probe.page) mm::free_pages(probe.page, 0);
        }
    }
    for (uint32_t cpu = 0; cpu < abi::kMaxVcpus; ++cpu) {
        if (!spinners[cpu]) continue;
        __atomic_store_n(&spinner_state[cpu].stop, 1, __ATOMIC_RELEASE);
        sched::join(spinners[cpu]);
    }
}

}  // namespace

KTEST(numa, a_thread_whose_ideal_processor_is_busy_stays_on_its_node) {
    uint32_t node = mm::kNoNode;
    for (uint32_t candidate = mm::node_count(); candidate-- > 0;)  // the highest: its CPUs are not the lowest numbered
        if (popcount64(mm::cpus_of_node(candidate).bits() & smp::online_mask()) >= 2) {
            node = candidate;
            break;
        }
    KSKIP_UNLESS(node != mm::kNoNode && popcount64(nodes_with_cpus()) >= 2 && (nodes_with_cpus() >> node) & 1,
                 "needs 2 NUMA nodes with vCPUs and 8 MiB free, one of them with 2 vCPUs");
    const uint32_t other_node = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus() & ~(1u << node)));
    PlacementTest test{node, first_cpu_of(node), 0, 0, 0, 0, 10};
    // The checks run on a CPU of another node, leaving that node's other CPUs idle: an idle CPU
    // outside the ideal node is always available, and must not be chosen while the node has one.
    const uint32_t runner = first_cpu_of(other_node);
    KASSERT(run_thread(runner, one_cpu(runner), check_scheduler_placement, &test));
    // A background thread (a worker, the migration thread) may briefly occupy the node's other
    // CPUs in a round; a scheduler that ignored the ideal node would send nearly every round away.
    KEXPECT(test.placed_in_node * 10 >= test.rounds * 8);
    KEXPECT_EQ(test.memory_elsewhere, 0u);
    KEXPECT_EQ(test.spilled_elsewhere, test.rounds);
    KEXPECT_EQ(test.spilled_memory_home, test.rounds);
}

namespace {

struct Wanderer {
    uint64_t node_cpus;
    uint32_t started_away;
    uint32_t release;      // set once the node's CPUs are free again
    uint64_t home_after_ns;
    uint64_t give_up_ns;
};

// CPU-bound: never blocks, so only preemption can move it.
void wander_until_home(void* context) {
    auto& wanderer = *static_cast<Wanderer*>(context);
    wanderer.started_away = !((wanderer.node_cpus >> current_cpu()) & 1);
    while (!__atomic_load_n(&wanderer.release, __ATOMIC_ACQUIRE)) x86::pause();
    const uint64_t released = time::now_ns();
    while (time::now_ns() < wanderer.give_up_ns) {
        if ((wanderer.node_cpus >> current_cpu()) & 1) {
            wanderer.home_after_ns = time::now_ns() - released;
            return;
        }
        x86::pause();
    }
}

}  // namespace

KTEST(numa, a_preempted_thread_returns_to_its_node_when_a_cpu_there_is_idle) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    const uint32_t node = 31 - static_cast<uint32_t>(__builtin_clz(nodes_with_cpus()));
    const uint64_t node_cpus = mm::cpus_of_node(node).bits() & smp::online_mask();
    // Every CPU of the node busy, so the thread starts elsewhere.
    Spinner spinners[abi::kMaxVcpus] = {};
    sched::Thread* spinner_threads[abi::kMaxVcpus] = {};
    for (uint64_t rest = node_cpus; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        sched::ThreadOptions options;
        options.name = "numa-spinner";
        options.ideal_cpu = cpu;
        options.affinity = one_cpu(cpu);
        spinner_threads[cpu] = sched::create_thread(spin_until_stopped, &spinners[cpu], options);
        KASSERT(spinner_threads[cpu] != nullptr && wait_until_running(spinners[cpu]));
    }
    Wanderer wanderer{node_cpus, 0, 0, 0, time::now_ns() + 2'000'000'000ull};
    sched::ThreadOptions options;
    options.name = "numa-wanderer";
    options.ideal_cpu = first_cpu_of(node);
    sched::Thread* thread = sched::create_thread(wander_until_home, &wanderer, options);
    KASSERT(thread != nullptr);
    sched::sleep_ns(20'000'000);  // it runs (away) for a couple of slices
    for (uint64_t rest = node_cpus; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        __atomic_store_n(&spinners[cpu].stop, 1, __ATOMIC_RELEASE);
        sched::join(spinner_threads[cpu]);
    }
    __atomic_store_n(&wanderer.release, 1, __ATOMIC_RELEASE);
    sched::join(thread);
    KEXPECT(wanderer.started_away);
    KEXPECT(wanderer.home_after_ns > 0);                  // it came home...
    KEXPECT(wanderer.home_after_ns < 200'000'000);        // ...within a few 10 ms slices
}

namespace {

struct WorkProbe {
    work::WorkItem item;
    uint32_t ran_on_node;
    uint32_t done;
};

void note_work_node(work::WorkItem& item) {
    auto& probe = *reinterpret_cast<WorkProbe*>(&item);
    {
        platform::InterruptsDisabled no_interrupts;
        probe.ran_on_node = this_cpu().node;
    }
    __atomic_store_n(&probe.done, 1, __ATOMIC_RELEASE);
}

}  // namespace

KTEST(numa, work_queued_for_a_node_runs_on_that_node) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    for (uint32_t node = 0; node < mm::node_count(); ++node) {
        if (!(nodes_with_cpus() & (1u << node))) continue;
        for (uint32_t i = 0; i < 4; ++i) {
            WorkProbe probe{};
            probe.item.function = note_work_node;
            probe.ran_on_node = mm::kNoNode;
            work::queue_on_node(node, probe.item);
            const uint64_t give_up = time::now_ns() + 2'000'000'000ull;
            while (!__atomic_load_n(&probe.done, __ATOMIC_ACQUIRE) && time::now_ns() < give_up) sched::sleep_ns(100'000);
            KASSERT(__atomic_load_n(&probe.done, __ATOMIC_ACQUIRE));
            KEXPECT_EQ(probe.ran_on_node, node);
        }
    }
}

// --- migration ---------------------------------------------------------------------------------------

namespace {

uint64_t pattern(uint64_t page, uint64_t word) { return (page << 20) ^ (word * 0x9e3779b97f4a7c15ull); }

void fill_region(const mm::MappedRegion& region) {
    for (uint64_t page = 0; page < region.pages; ++page) {
        auto* words = reinterpret_cast<uint64_t*>(region.base + page * mm::kPageSize);
        for (uint64_t word = 0; word < mm::kPageSize / 8; word += 61) words[word] = pattern(page, word);
    }
}

uint64_t damaged_pages(const mm::MappedRegion& region) {
    uint64_t damaged = 0;
    for (uint64_t page = 0; page < region.pages; ++page) {
        const auto* words = reinterpret_cast<const uint64_t*>(region.base + page * mm::kPageSize);
        bool intact = true;
        for (uint64_t word = 0; word < mm::kPageSize / 8; word += 61) intact &= words[word] == pattern(page, word);
        damaged += !intact;
    }
    return damaged;
}

// Waits (up to `timeout_ns` after `start`) until every page of the region is on `node`; returns
// the time since `start`, or 0 on timeout. `start` is taken before the change that starts the
// migration: this thread may be switched out (it moves to its new ideal processor) or its vCPU
// descheduled before it gets here, while the migration already runs.
uint64_t wait_until_home(const mm::MappedRegion& region, uint32_t node, uint64_t start, uint64_t timeout_ns) {
    while (mm::region_pages_on_node(region, node) != region.pages) {
        if (time::now_ns() - start > timeout_ns) return 0;
        sched::sleep_ns(2'000'000);
    }
    return time::now_ns() - start;
}

struct MigrationRun {
    uint32_t from_cpu, to_cpu;
    uint32_t from_node, to_node;
    uint64_t pages;
    bool mapped;
    uint64_t on_from_at_first;
    uint64_t took_ns;
    uint64_t damaged;
};

void follow_the_thread(void* context) {
    auto& run = *static_cast<MigrationRun*>(context);
    mm::MappedRegion region;
    run.mapped = sched::map_thread_memory(region, run.pages * mm::kPageSize);
    if (!run.mapped) return;
    fill_region(region);
    run.on_from_at_first = mm::region_pages_on_node(region, run.from_node);
    const uint64_t moved_at = time::now_ns();
    sched::set_ideal_processor(sched::current_thread(), run.to_cpu);  // the region's home moves too
    run.took_ns = wait_until_home(region, run.to_node, moved_at, 3'000'000'000ull);
    run.damaged = damaged_pages(region);
    sched::unmap_thread_memory(region);
}

}  // namespace

KTEST(numa, mapped_pages_migrate_to_the_new_ideal_node_at_the_set_rate) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    KSKIP_UNLESS(migration::rate() > 0, "page migration is switched off");
    const uint32_t from = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus()));
    const uint32_t to = 31 - static_cast<uint32_t>(__builtin_clz(nodes_with_cpus()));
    MigrationRun run{first_cpu_of(from), first_cpu_of(to), from, to, 256, false, 0, 0, 0};
    const mm::MigrationStats before = mm::migration_stats();
    const uint64_t migrated_in_before = mm::node_stats(to).migrated_in;
    KASSERT(run_thread(run.from_cpu, sched::kAllCpus, follow_the_thread, &run));
    const mm::MigrationStats after = mm::migration_stats();
    KASSERT(run.mapped);
    KEXPECT_EQ(run.on_from_at_first, run.pages);
    KEXPECT(run.took_ns > 0);  // all home within 3 s
    KEXPECT_EQ(run.damaged, 0u);
    KEXPECT(after.migrated - before.migrated >= run.pages);
    KEXPECT(mm::node_stats(to).migrated_in - migrated_in_before >= run.pages);
    // The rate limit: no pass moves more than its budget, so the move takes several periods.
    const uint64_t budget = migration::budget_per_pass(migration::rate());
    KEXPECT(after.largest_pass <= budget);
    const uint64_t passes_needed = (run.pages + budget - 1) / budget;
    KEXPECT(run.took_ns >= (passes_needed - 1) * migration::kPeriodNs);
    KEXPECT_EQ(mm::migration_stats().regions, before.regions);
}

namespace {

struct ConcurrentUse {
    mm::MappedRegion* region;
    uint32_t stop;
    uint64_t writes;
    uint64_t mismatches;
};

// Writes a running count into every page and reads back what it wrote, until stopped.
void write_and_verify(void* context) {
    auto& use = *static_cast<ConcurrentUse*>(context);
    const uint64_t pages = use.region->pages;
    for (uint64_t round = 1; !__atomic_load_n(&use.stop, __ATOMIC_ACQUIRE); ++round) {
        for (uint64_t page = 0; page < pages; ++page) {
            volatile uint64_t* word = reinterpret_cast<volatile uint64_t*>(use.region->base + page * mm::kPageSize + (round % 512) * 8);
            *word = round * 1000 + page;
            if (*word != round * 1000 + page) ++use.mismatches;
            ++use.writes;
        }
        // And the previous round's words are still there.
        for (uint64_t page = 0; page < pages; ++page) {
            const uint64_t previous = round - 1;
            if (previous == 0) break;
            volatile uint64_t* word = reinterpret_cast<volatile uint64_t*>(use.region->base + page * mm::kPageSize + (previous % 512) * 8);
            if (*word != previous * 1000 + page) ++use.mismatches;
        }
    }
}

}  // namespace

KTEST(numa, migrating_pages_stay_consistent_while_another_cpu_writes_them) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: one writes while another migrates");
    const uint32_t a = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus()));
    const uint32_t b = 31 - static_cast<uint32_t>(__builtin_clz(nodes_with_cpus()));
    mm::MappedRegion region;
    KASSERT(mm::map_region(region, 32 * mm::kPageSize, a));
    // The background thread is stopped; this test moves the pages itself, as fast as it can.
    const uint64_t rate = migration::rate();
    migration::set_rate(0);
    ConcurrentUse use{&region, 0, 0, 0};
    const uint32_t self = current_cpu();
    const uint32_t writer_cpu = test::nth_online_cpu(self + 1);
    sched::ThreadOptions options;
    options.name = "numa-writer";
    options.ideal_cpu = writer_cpu;
    options.affinity = one_cpu(writer_cpu);
    sched::Thread* writer = sched::create_thread(write_and_verify, &use, options);
    KASSERT(writer != nullptr);
    uint64_t moved = 0;
    for (uint32_t flip = 0; flip < 20; ++flip) {
        mm::set_region_home(region, flip % 2 ? a : b);
        moved += mm::migrate_misplaced_pages(~0ull).migrated;
    }
    __atomic_store_n(&use.stop, 1, __ATOMIC_RELEASE);
    sched::join(writer);
    migration::set_rate(rate);
    KEXPECT_EQ(moved, 20 * region.pages);
    KEXPECT_EQ(mm::region_pages_on_node(region, a), region.pages);  // the last flip sent them home to a
    KEXPECT(use.writes > 0);
    KEXPECT_EQ(use.mismatches, 0u);
    mm::unmap_region(region);
}

namespace {

struct HomecomingRun {
    uint32_t node;
    uint64_t placed_home_under_pressure;
    uint64_t home_while_pressed;
    uint64_t took_ns;
    bool mapped;
};

void map_under_pressure_then_release(void* context) {
    auto& run = *static_cast<HomecomingRun*>(context);
    mm::MappedRegion region;
    {
        test::NodePressure pressure(run.node);
        run.mapped = sched::map_thread_memory(region, 64 * mm::kPageSize);
        if (!run.mapped) return;
        run.placed_home_under_pressure = mm::region_pages_on_node(region, run.node);
        sched::sleep_ns(150'000'000);  // the migration thread tries, and must not push the node lower
        pressure.top_up();
        run.home_while_pressed = mm::region_pages_on_node(region, run.node);
    }
    run.took_ns = wait_until_home(region, run.node, time::now_ns(), 3'000'000'000ull);
    sched::unmap_thread_memory(region);
}

}  // namespace

KTEST(numa, pages_placed_away_under_pressure_go_home_when_it_ends) {
    KSKIP_UNLESS(popcount64(nodes_with_cpus()) >= 2, kNeedsTwoNodes);
    KSKIP_UNLESS(migration::rate() > 0, "page migration is switched off");
    const uint32_t node = static_cast<uint32_t>(__builtin_ctz(nodes_with_cpus()));
    HomecomingRun run{node, ~0ull, ~0ull, 0, false};
    const uint32_t cpu = first_cpu_of(node);
    const uint64_t blocked_before = mm::migration_stats().blocked;
    KASSERT(run_thread(cpu, one_cpu(cpu), map_under_pressure_then_release, &run));
    KASSERT(run.mapped);
    KEXPECT_EQ(run.placed_home_under_pressure, 0u);  // the node was at its low watermark
    KEXPECT_EQ(run.home_while_pressed, 0u);
    KEXPECT(mm::migration_stats().blocked > blocked_before);
    KEXPECT(run.took_ns > 0);
}

}  // namespace hvkvm::guest
