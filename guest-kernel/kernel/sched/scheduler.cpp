#include "kernel/sched/scheduler.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "arch/x86_64/trap_frame.h"
#include "kernel/interrupts.h"
#include "kernel/panic.h"
#include "kernel/sched/scheduler_internal.h"
#include "kernel/sched/timer.h"
#include "kernel/sync/cross_call.h"
#include "mm/node_topology.h"

extern "C" hvkvm::guest::sched::Thread* switch_context(uint64_t* save_rsp, uint64_t new_rsp,
                                                        hvkvm::guest::sched::Thread* previous);

namespace hvkvm::guest::sched {
namespace {

// One per CPU.
struct CpuScheduler {
    SpinLock lock;  // run_queue and zombies
    IntrusiveList<Thread, &Thread::queue_link> run_queue;
    IntrusiveList<Thread, &Thread::queue_link> zombies;  // exited detached threads to free
    Thread* idle = nullptr;
    Timer slice_timer;
    bool halted = false;  // in the idle halt: a wake-up must send an IPI
    uint64_t switches = 0;
    uint64_t steals = 0;
    uint64_t halts = 0;
    uint64_t sent_home = 0;  // preempted threads moved to an idle CPU of their ideal node
    // The ideal node of the thread running here if that is not this CPU's node, else kNoNode:
    // what an idle CPU of that node looks for (a number, not the thread: it may be gone).
    uint32_t running_away_from = mm::kNoNode;
    uint64_t last_nudge_ns = 0;  // when this CPU, idle, last asked another to send a thread home
    uint64_t nudges = 0;
    uint64_t last_thief_wake_ns = 0;  // when this CPU, with threads waiting, last woke an idle CPU
    uint64_t thief_wakes = 0;
};

CpuScheduler cpus[abi::kMaxVcpus];
Thread idle_threads[abi::kMaxVcpus];

CpuScheduler& local() { return cpus[this_cpu().index]; }

bool cpu_allowed(const Thread& thread, uint32_t cpu) { return (thread.affinity >> cpu) & 1; }

}  // namespace

bool cpu_is_idle(uint32_t cpu) {
    const CpuScheduler& scheduler = cpus[cpu];
    return __atomic_load_n(&per_cpu(cpu).current_thread, __ATOMIC_RELAXED) == scheduler.idle &&
           scheduler.run_queue.empty();
}

bool threads_waiting_here() { return !local().run_queue.empty(); }

namespace {

// The CPU among `allowed` for which `wanted` holds that is nearest to `node` (lowest distance, then
// lowest number), or kAnyCpu.
template <typename Predicate>
uint32_t nearest_cpu(uint64_t allowed, uint32_t node, Predicate wanted) {
    uint32_t best = kAnyCpu;
    uint32_t best_distance = 0;
    for (uint64_t rest = allowed; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        if (!wanted(cpu)) continue;
        const uint32_t distance = mm::node_distance(node, mm::node_of_cpu(cpu));
        if (best == kAnyCpu || distance < best_distance) {
            best = cpu;
            best_distance = distance;
        }
    }
    return best;
}

// As Windows chooses (Server 2008): the ideal processor if it is idle; else an idle CPU of the
// ideal node, so that the thread stays with its memory; else the idle CPU nearest to that node;
// else the ideal processor anyway (or, if it may not run there, a CPU of its ideal node, or the
// first CPU it may use). A thread placed off its node still allocates from its ideal node.
uint32_t select_cpu(const Thread& thread) {
    const uint64_t candidates = thread.affinity & smp::online_mask();
    if (candidates == 0) panic("thread %s may run on no online CPU", thread.name);
    const uint32_t ideal = __atomic_load_n(&thread.ideal_cpu, __ATOMIC_RELAXED);
    const uint32_t node = __atomic_load_n(&thread.ideal_node, __ATOMIC_RELAXED);
    const bool ideal_allowed = ideal < abi::kMaxVcpus && ((candidates >> ideal) & 1);
    if (ideal_allowed && cpu_is_idle(ideal)) return ideal;
    const uint64_t node_candidates = candidates & mm::cpus_of_node(node).bits();
    for (uint64_t rest = node_candidates; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        if (cpu_is_idle(cpu)) return cpu;
    }
    if (const uint32_t cpu = nearest_cpu(candidates & ~node_candidates, node, cpu_is_idle); cpu != kAnyCpu) return cpu;
    if (ideal_allowed) return ideal;
    return static_cast<uint32_t>(__builtin_ctzll(node_candidates ? node_candidates : candidates));
}

// True if `cpu` runs a thread away from that thread's ideal node and has nothing queued: a thread
// that belongs there may take its place, since the visitor will itself go home or be nudged.
bool cpu_runs_a_visitor(uint32_t cpu) {
    return __atomic_load_n(&cpus[cpu].running_away_from, __ATOMIC_RELAXED) != mm::kNoNode && cpus[cpu].run_queue.empty();
}

// For a thread preempted on a CPU outside its ideal node: a CPU of that node it may use where it
// should continue (its ideal processor first): an idle one, else one running another node's
// thread (so that threads which all started on each other's nodes sort themselves out); kAnyCpu
// to stay here.
uint32_t cpu_to_return_home(const Thread& thread, uint32_t current) {
    const uint32_t node = __atomic_load_n(&thread.ideal_node, __ATOMIC_RELAXED);
    if (mm::node_of_cpu(current) == node) return kAnyCpu;
    const uint64_t home_cpus = thread.affinity & smp::online_mask() & mm::cpus_of_node(node).bits();
    const uint32_t ideal = __atomic_load_n(&thread.ideal_cpu, __ATOMIC_RELAXED);
    const bool ideal_allowed = ideal < abi::kMaxVcpus && ((home_cpus >> ideal) & 1);
    if (ideal_allowed && cpu_is_idle(ideal)) return ideal;
    for (uint64_t rest = home_cpus; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        if (cpu_is_idle(cpu)) return cpu;
    }
    if (ideal_allowed && cpu_runs_a_visitor(ideal)) return ideal;
    for (uint64_t rest = home_cpus; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        if (cpu_runs_a_visitor(cpu)) return cpu;
    }
    return kAnyCpu;
}

// Makes sure `cpu` notices new work in its run queue.
void kick(uint32_t cpu) {
    if (cpu == this_cpu().index) {
        if (this_cpu().current_thread == cpus[cpu].idle) this_cpu().need_resched = true;
        return;
    }
    // Pairs with the fence in the idle loop between setting `halted` and re-checking the queue.
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&cpus[cpu].halted, __ATOMIC_RELAXED)) apic::send_ipi(cpu, x86::kRescheduleVector);
}

void enqueue(uint32_t cpu, Thread& thread) {
    {
        SpinLockGuard guard(cpus[cpu].lock);
        cpus[cpu].run_queue.push_back(thread);
    }
    kick(cpu);
}

// An idle CPU takes a thread waiting behind a running one on another CPU: first from CPUs of its
// own node (the thread stays near its memory), then from the others. Threads queued on a CPU
// that is idle (and being woken to run them) are left alone: taking them would only race that CPU
// and move the thread off its ideal processor.
Thread* steal_from(uint32_t self, uint64_t victims) {
    for (uint64_t rest = victims; rest; rest &= rest - 1) {
        const auto victim_index = static_cast<uint32_t>(__builtin_ctzll(rest));
        CpuScheduler& victim = cpus[victim_index];
        if (victim.run_queue.empty()) continue;  // racy peeks; the queue is checked again under the lock
        if (__atomic_load_n(&per_cpu(victim_index).current_thread, __ATOMIC_RELAXED) == victim.idle) continue;
        SpinLockGuard guard(victim.lock);
        for (Thread* thread = victim.run_queue.front(); thread; thread = victim.run_queue.next_of(*thread)) {
            // A thread on its way back to its ideal node waits there for its turn (at most a slice):
            // stealing it would only send it away again.
            if (!cpu_allowed(*thread, self) || thread->going_home) continue;
            victim.run_queue.remove(*thread);
            ++cpus[self].steals;
            return thread;
        }
    }
    return nullptr;
}

Thread* steal(uint32_t self) {
    const uint64_t others = smp::online_mask() & ~(1ull << self);
    const uint64_t same_node = others & mm::cpus_of_node(this_cpu().node).bits();
    if (Thread* thread = steal_from(self, same_node)) return thread;
    return steal_from(self, others & ~same_node);
}

// An idle CPU asks a CPU running a thread whose ideal node is this CPU's node (while that CPU is
// on another node) to reschedule now, rather than at the end of its slice: the preempted thread
// then comes here (cpu_to_return_home). At most once per time slice, so a thread that may not run
// here (its affinity) costs one IPI per slice at worst.
void nudge_a_thread_home(uint32_t self, CpuScheduler& scheduler) {
    const uint32_t node = this_cpu().node;
    const uint64_t now = time::now_ns();
    if (now - scheduler.last_nudge_ns < kTimeSliceNs) return;
    const uint64_t others = smp::online_mask() & ~(1ull << self);
    for (uint64_t rest = others; rest; rest &= rest - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(rest));
        if (__atomic_load_n(&cpus[cpu].running_away_from, __ATOMIC_RELAXED) != node) continue;
        scheduler.last_nudge_ns = now;
        ++scheduler.nudges;
        apic::send_ipi(cpu, x86::kRescheduleVector);
        return;
    }
}

// A CPU that starts a thread with others still waiting in its queue wakes a CPU asleep in the
// idle halt (the nearest) to steal one. Idle CPUs look for work only on their way to the halt, and
// pass over the queue of a CPU caught between threads; a descheduled vCPU can make that moment
// long, and the idle CPU then slept while threads here took turns (seen once under host load: a CPU
// ran none of 4 spinning threads in 2 s). At most once per time slice.
void wake_an_idle_thief(uint32_t self, CpuScheduler& scheduler, uint64_t now) {
    if (scheduler.run_queue.empty() || now - scheduler.last_thief_wake_ns < kTimeSliceNs) return;
    const uint64_t others = smp::online_mask() & ~(1ull << self);
    const uint32_t best = nearest_cpu(others, this_cpu().node,
                                      [](uint32_t cpu) { return __atomic_load_n(&cpus[cpu].halted, __ATOMIC_RELAXED); });
    if (best == kAnyCpu) return;
    scheduler.last_thief_wake_ns = now;
    ++scheduler.thief_wakes;
    apic::send_ipi(best, x86::kRescheduleVector);
}

void note_placement(CpuScheduler& scheduler, const Thread& running) {
    const uint32_t node = __atomic_load_n(&running.ideal_node, __ATOMIC_RELAXED);
    __atomic_store_n(&scheduler.running_away_from, running.is_idle || node == this_cpu().node ? mm::kNoNode : node,
                     __ATOMIC_RELAXED);
}

void on_slice_expired(Timer&) { this_cpu().need_resched = true; }

void handle_timer_vector(x86::TrapFrame&) {
    apic::end_of_interrupt();
    handle_timer_interrupt();
}

void handle_reschedule_vector(x86::TrapFrame&) {
    apic::end_of_interrupt();
    this_cpu().need_resched = true;
}

void adopt_current_context_as_idle() {
    const uint32_t index = this_cpu().index;
    CpuScheduler& scheduler = cpus[index];
    Thread& idle = idle_threads[index];
    idle.is_idle = true;
    idle.state = ThreadState::kRunning;
    idle.on_cpu = true;
    idle.affinity = 1ull << index;
    idle.ideal_cpu = idle.last_cpu = index;
    idle.ideal_node = this_cpu().node;
    idle.switched_in_ns = time::now_ns();
    const char name[] = "idle";
    for (size_t i = 0; i < sizeof name; ++i) idle.name[i] = name[i];
    scheduler.idle = &idle;
    scheduler.slice_timer.callback = on_slice_expired;
    this_cpu().current_thread = &idle;
    init_timers_on_this_cpu();
}

}  // namespace

Thread* current_thread() { return this_cpu().current_thread; }

void init_boot_cpu() {
    interrupts::set_handler(x86::kTimerVector, handle_timer_vector);
    interrupts::set_handler(x86::kRescheduleVector, handle_reschedule_vector);
    adopt_current_context_as_idle();
}

void init_this_cpu() { adopt_current_context_as_idle(); }

void wake_up(Thread* thread) {
    ThreadState expected = ThreadState::kBlocked;
    if (!__atomic_compare_exchange_n(&thread->state, &expected, ThreadState::kRunnable, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return;
    platform::InterruptsDisabled no_interrupts;
    enqueue(select_cpu(*thread), *thread);
}

void schedule() {
    const uint32_t index = this_cpu().index;
    CpuScheduler& scheduler = cpus[index];
    Thread* previous = this_cpu().current_thread;
    const uint64_t now = time::now_ns();
    previous->runtime_ns += now - previous->switched_in_ns;
    this_cpu().need_resched = false;
    __atomic_store_n(&scheduler.halted, false, __ATOMIC_RELAXED);  // woken from the idle halt, if it was there

    Thread* next;
    uint32_t send_home_to = kAnyCpu;
    {
        SpinLockGuard guard(scheduler.lock);
        // A running thread that is merely preempted goes to the back of the queue (or, if it runs
        // away from its ideal node and a CPU there can take it, back home); a blocked one waits
        // for its wake-up; one woken while still here is already queued by its waker.
        if (__atomic_load_n(&previous->state, __ATOMIC_RELAXED) == ThreadState::kRunning && !previous->is_idle) {
            previous->state = ThreadState::kRunnable;
            send_home_to = cpu_to_return_home(*previous, index);
            if (send_home_to == kAnyCpu) scheduler.run_queue.push_back(*previous);
        }
        next = scheduler.run_queue.pop_front();
    }
    // That CPU takes it once this one has saved its context (on_cpu), like any thread woken while
    // switching out. One run-queue lock at a time: this CPU's is released.
    if (send_home_to != kAnyCpu) {
        ++scheduler.sent_home;
        previous->going_home = true;  // read by thieves under the target queue's lock, taken in enqueue
        enqueue(send_home_to, *previous);
    }
    if (!next) next = steal(index);
    if (!next) next = scheduler.idle;
    if (next == previous) {
        previous->state = ThreadState::kRunning;
        this_cpu().memory_node = __atomic_load_n(&previous->ideal_node, __ATOMIC_RELAXED);
        note_placement(scheduler, *previous);
        previous->switched_in_ns = now;
        if (!previous->is_idle) arm_timer(scheduler.slice_timer, now + kTimeSliceNs);
        return;
    }

    // `next` may still be switching out on the CPU it last ran on (woken while blocking). Only once
    // that CPU is done may it be marked running: that CPU's schedule() reads the state to decide
    // whether the thread was merely preempted (and must be queued again), so seeing "running"
    // early would queue it a second time.
    while (__atomic_load_n(&next->on_cpu, __ATOMIC_ACQUIRE)) x86::pause();
    __atomic_store_n(&next->state, ThreadState::kRunning, __ATOMIC_RELAXED);
    next->on_cpu = true;
    next->going_home = false;
    if (next->last_cpu != index) ++next->migrations;
    next->last_cpu = index;
    next->switched_in_ns = now;
    ++next->switches;
    ++scheduler.switches;
    this_cpu().current_thread = next;
    this_cpu().memory_node = __atomic_load_n(&next->ideal_node, __ATOMIC_RELAXED);
    note_placement(scheduler, *next);
    if (next->is_idle) {
        cancel_timer(scheduler.slice_timer);
    } else {
        arm_timer(scheduler.slice_timer, now + kTimeSliceNs);
        wake_an_idle_thief(index, scheduler, now);
    }

    Thread* switched_from = switch_context(&previous->saved_rsp, next->saved_rsp, previous);
    finish_switch(switched_from);
}

void block_and_unlock(SpinLock& lock) {
    __atomic_store_n(&this_cpu().current_thread->state, ThreadState::kBlocked, __ATOMIC_RELEASE);
    lock.unlock();
    schedule();
}

void preempt_if_needed() {
    if (this_cpu().need_resched) schedule();
}

void idle_loop() {
    for (;;) {
        reap_zombies();
        platform::disable_interrupts();
        CpuScheduler& scheduler = local();
        const uint64_t poll_until = time::now_ns() + kIdlePollNs;
        while (!this_cpu().need_resched && scheduler.run_queue.empty() && time::now_ns() < poll_until) x86::pause();
        if (this_cpu().need_resched || !scheduler.run_queue.empty()) {
            schedule();
        } else {
            nudge_a_thread_home(this_cpu().index, scheduler);
            __atomic_store_n(&scheduler.halted, true, __ATOMIC_RELAXED);
            __atomic_thread_fence(__ATOMIC_SEQ_CST);  // pairs with kick(): queue re-checked after `halted` is visible
            const bool work = !scheduler.run_queue.empty();
            if (!work) {
                ++scheduler.halts;
                platform::safe_halt();  // returns with interrupts enabled, after an interrupt
                platform::disable_interrupts();
            }
            __atomic_store_n(&scheduler.halted, false, __ATOMIC_RELAXED);
            schedule();  // also tries to steal work from busy CPUs
        }
        platform::enable_interrupts();
    }
}

void push_zombie(Thread& thread) {
    CpuScheduler& scheduler = local();
    SpinLockGuard guard(scheduler.lock);
    scheduler.zombies.push_back(thread);
}

Thread* pop_zombie() {
    CpuScheduler& scheduler = local();
    IrqSpinLockGuard guard(scheduler.lock);
    return scheduler.zombies.pop_front();
}

CpuSchedulerStats cpu_stats(uint32_t cpu) {
    const CpuScheduler& scheduler = cpus[cpu];
    return {scheduler.switches, scheduler.steals,  scheduler.halts,
            scheduler.sent_home, scheduler.nudges, scheduler.thief_wakes,
            static_cast<uint32_t>(scheduler.run_queue.size())};
}

}  // namespace hvkvm::guest::sched
