// The scheduler: per-CPU run queues (FIFO, round robin with a fixed time slice), an idle thread
// per CPU that polls briefly and then halts, and idle CPUs that steal work from busy ones.
//
// NUMA: a thread is placed on its ideal processor if idle, else on an idle CPU of its ideal node,
// else on the nearest idle CPU; a thread preempted away from its ideal node moves back as soon as
// a CPU there is idle or runs another node's thread, and an idle CPU asks for such a thread to be
// preempted early; idle CPUs steal from their own node first.
//
// Locking: each CPU's run queue has its own lock, always taken with interrupts disabled, and
// never two at once. A thread is switched in only once its previous CPU has saved its context
// (Thread::on_cpu), so a thread woken while still switching out cannot run twice.
#pragma once

#include <stdint.h>

#include "kernel/sched/thread.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::sched {

inline constexpr uint64_t kTimeSliceNs = 10'000'000;
inline constexpr uint64_t kIdlePollNs = 5'000;  // poll before halting: an IPI costs far more

// The calling context becomes this CPU's idle thread (boot CPU: then returns to the caller).
void init_boot_cpu();
void init_this_cpu();
[[noreturn]] void idle_loop();

// Makes a blocked thread runnable on the CPU chosen for it; no-op unless it is blocked.
void wake_up(Thread* thread);

// Blocks the current thread. The caller has interrupts disabled and holds `lock`, which a waker
// must take before calling wake_up(); it is released here, after the thread is marked blocked,
// so a wake-up cannot be lost. Returns (interrupts still disabled, lock not held) once woken.
void block_and_unlock(SpinLock& lock);

// Runs the scheduler now. Interrupts must be disabled.
void schedule();

// For the trap handler, after an external interrupt: switch if a reschedule was requested.
void preempt_if_needed();

// True if `cpu` runs its idle thread and has nothing queued (a snapshot: it may change at once).
bool cpu_is_idle(uint32_t cpu);

// True if a thread waits in the calling CPU's run queue (a snapshot). A thread that spins for
// something (a block-layer waiter polling its device) stops and sleeps instead, so that the waiting
// thread runs now rather than at the end of the spinner's time slice.
bool threads_waiting_here();

struct CpuSchedulerStats {
    uint64_t switches;
    uint64_t steals;
    uint64_t halts;
    uint64_t sent_home;  // threads preempted here, away from their ideal node, moved to an idle CPU there
    uint64_t nudges;     // reschedules this CPU, idle, asked of a CPU running a thread of its node
    uint64_t thief_wakes;  // idle CPUs this CPU woke to steal a thread waiting in its queue
    uint32_t queued;
};
CpuSchedulerStats cpu_stats(uint32_t cpu);

}  // namespace hvkvm::guest::sched
