#include "kernel/work/work_queue.h"

#include "arch/x86_64/per_cpu.h"
#include "kernel/panic.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/cross_call.h"
#include "kernel/sched/mutex.h"
#include "lib/bits.h"
#include "mm/node_topology.h"

namespace hvkvm::guest::work {
namespace {

struct Worker {
    SpinLock lock;
    IntrusiveList<WorkItem, &WorkItem::link> items;
    Semaphore available;
    sched::Thread* thread = nullptr;
    uint64_t queued = 0;
    uint64_t completed = 0;
};

// One worker per CPU, created by init().
Worker workers[abi::kMaxVcpus];
// Work queued for a node from another node goes to the node's CPUs in turn.
uint32_t node_turns[numa::kMaxNodes];

void worker_loop(void* argument) {
    Worker& worker = *static_cast<Worker*>(argument);
    for (;;) {
        worker.available.wait();
        WorkItem* item;
        {
            IrqSpinLockGuard guard(worker.lock);
            item = worker.items.pop_front();
        }
        item->function(*item);  // the item may be freed by its function
        __atomic_fetch_add(&worker.completed, 1, __ATOMIC_RELAXED);
    }
}

}  // namespace

void init() {
    const uint32_t count = smp::configured_cpu_count();
    for (uint32_t cpu = 0; cpu < count; ++cpu) {
        sched::ThreadOptions options;
        options.name = "worker";
        options.ideal_cpu = cpu;
        // Work never leaves its node: what a CPU queues (an I/O completion) runs near the memory
        // it was issued with, even when this worker's own CPU is busy.
        options.affinity = mm::cpus_of_node(mm::node_of_cpu(cpu)).bits();
        workers[cpu].thread = sched::create_thread(worker_loop, &workers[cpu], options);
        if (!workers[cpu].thread) panic("cannot create the worker thread for CPU %u", cpu);
        sched::detach(workers[cpu].thread);
    }
}

void queue(WorkItem& item) {
    platform::InterruptsDisabled no_interrupts;  // the current CPU must not change while choosing
    queue_on(this_cpu().index, item);
}

void queue_on(uint32_t cpu, WorkItem& item) {
    Worker& worker = workers[cpu];
    if (!worker.thread) panic("work queued for CPU %u, which has no worker", cpu);
    {
        IrqSpinLockGuard guard(worker.lock);
        worker.items.push_back(item);
        ++worker.queued;
    }
    worker.available.signal();
}

void queue_on_node(uint32_t node, WorkItem& item) {
    uint32_t cpu;
    {
        platform::InterruptsDisabled no_interrupts;
        cpu = this_cpu().index;
    }
    const uint64_t node_cpus = mm::cpus_of_node(node).bits() & smp::online_mask();
    if (node_cpus != 0 && !((node_cpus >> cpu) & 1)) {
        const uint32_t turn = __atomic_fetch_add(&node_turns[node], 1, __ATOMIC_RELAXED) % popcount64(node_cpus);
        uint64_t rest = node_cpus;
        for (uint32_t i = 0; i < turn; ++i) rest &= rest - 1;
        cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
    }
    queue_on(cpu, item);
}

WorkStats stats() {
    WorkStats total{};
    for (const Worker& worker : workers) {
        total.queued += __atomic_load_n(&worker.queued, __ATOMIC_RELAXED);
        total.completed += __atomic_load_n(&worker.completed, __ATOMIC_RELAXED);
    }
    return total;
}

}  // namespace hvkvm::guest::work
