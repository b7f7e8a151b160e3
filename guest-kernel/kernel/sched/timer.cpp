#include "kernel/sched/timer.h"

#include "arch/x86_64/apic.h"
#include "arch/x86_64/per_cpu.h"
#include "kernel/sync/spinlock.h"
#include "arch/x86_64/time.h"

namespace hvkvm::guest::sched {
namespace {

struct TimerQueue {
    SpinLock lock;
    IntrusiveList<Timer, &Timer::link> timers;  // sorted by deadline
    Timer* running = nullptr;                   // whose callback runs now
    uint64_t armed_tsc = 0;                     // what the LAPIC timer is set to (0: off)
};

// One queue per CPU.
TimerQueue queues[abi::kMaxVcpus];

// Points the LAPIC timer at the earliest deadline. Caller holds the queue's lock on this CPU.
void program(TimerQueue& queue) {
    const Timer* first = queue.timers.front();
    const uint64_t tsc = first ? time::ns_to_tsc_absolute(first->deadline_ns) : 0;
    if (tsc == queue.armed_tsc) return;  // each LAPIC write traps to the host: skip no-ops
    queue.armed_tsc = tsc;
    apic::arm_timer_at_tsc(tsc);
}

void insert_sorted(TimerQueue& queue, Timer& timer) {
    for (Timer* other = queue.timers.front(); other; other = queue.timers.next_of(*other)) {
        if (timer.deadline_ns < other->deadline_ns) {
            queue.timers.insert_before(*other, timer);
            return;
        }
    }
    queue.timers.push_back(timer);
}

}  // namespace

void init_timers_on_this_cpu() { queues[this_cpu().index].armed_tsc = 0; }

void arm_timer(Timer& timer, uint64_t deadline_ns) {
    cancel_timer(timer);
    platform::InterruptsDisabled no_interrupts;
    const uint32_t cpu = this_cpu().index;
    TimerQueue& queue = queues[cpu];
    SpinLockGuard guard(queue.lock);
    timer.deadline_ns = deadline_ns;
    timer.cpu = cpu;
    timer.pending = true;
    insert_sorted(queue, timer);
    program(queue);
}

bool cancel_timer(Timer& timer) {
    for (;;) {
        TimerQueue& queue = queues[__atomic_load_n(&timer.cpu, __ATOMIC_ACQUIRE)];
        {
            IrqSpinLockGuard guard(queue.lock);
            if (&queue != &queues[timer.cpu]) continue;  // moved to another CPU meanwhile
            // Not running, or running right here: a callback cancelling (or re-arming) its own
            // timer must not wait for itself.
            if (queue.running != &timer || timer.cpu == this_cpu().index) {
                const bool was_pending = timer.pending;
                if (was_pending) {
                    queue.timers.remove(timer);
                    timer.pending = false;
                }
                return was_pending;
            }
        }
        x86::pause();  // its callback is running on that CPU: wait until it returns
    }
}

void handle_timer_interrupt() {
    TimerQueue& queue = queues[this_cpu().index];
    queue.lock.lock();  // interrupts are off in the handler
    queue.armed_tsc = 0;  // the one-shot deadline has passed
    const uint64_t now = time::now_ns();
    while (Timer* timer = queue.timers.front()) {
        if (timer->deadline_ns > now) break;
        queue.timers.remove(*timer);
        timer->pending = false;
        queue.running = timer;
        queue.lock.unlock();
        timer->callback(*timer);  // may arm timers (on this CPU) itself
        queue.lock.lock();
        queue.running = nullptr;
    }
    program(queue);
    queue.lock.unlock();
}

}  // namespace hvkvm::guest::sched
