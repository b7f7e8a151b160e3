// Per-CPU timer queues. A timer fires on the CPU it was armed on, in interrupt context (interrupts
// disabled), so callbacks must be short and must not block. Expiry takes only that CPU's queue
// lock: there is no global timer lock.
#pragma once

#include <stdint.h>

#include "lib/intrusive_list.h"

namespace hvkvm::guest::sched {

struct Timer {
    uint64_t deadline_ns = 0;  // time::now_ns() scale
    void (*callback)(Timer&) = nullptr;
    void* context = nullptr;   // for the callback's use
    ListNode link;
    uint32_t cpu = 0;          // the queue it is (or was last) on
    bool pending = false;      // armed and not yet fired or cancelled
};

// Arms `timer` on the current CPU (re-arms it if it was pending).
void arm_timer(Timer& timer, uint64_t deadline_ns);
// Cancels a pending timer, from any CPU. If its callback is running right now, waits for it to
// finish, so that the caller may free the timer afterwards. Returns true if it was pending.
bool cancel_timer(Timer& timer);

// Scheduler interface: per-CPU setup and the timer interrupt.
void init_timers_on_this_cpu();
void handle_timer_interrupt();

}  // namespace hvkvm::guest::sched
