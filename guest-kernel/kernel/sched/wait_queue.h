// Threads waiting for a condition that another thread (or an interrupt) will signal. A WaitQueue
// has no lock of its own: it is protected by the spinlock that also protects the condition, which
// is what makes check-then-wait free of lost wake-ups.
#pragma once

#include <stdint.h>

#include "kernel/sched/thread.h"
#include "kernel/sched/timer.h"
#include "kernel/sync/spinlock.h"
#include "lib/intrusive_list.h"

namespace hvkvm::guest {

inline constexpr uint64_t kWaitForever = ~0ull;

enum class WaitResult { kPending, kWoken, kTimedOut };

class WaitQueue {
public:
    // Blocks the current thread until wake_one()/wake_all() picks it or `deadline_ns`
    // (time::now_ns() scale) passes. The caller holds `lock` with interrupts disabled; it is
    // released while the thread sleeps and held again on return.
    WaitResult wait(SpinLock& lock, uint64_t deadline_ns = kWaitForever);

    // The caller holds the lock. Returns the thread woken, or nullptr if none was waiting.
    sched::Thread* wake_one();
    uint32_t wake_all();
    bool empty() const { return waiters_.empty(); }

private:
    struct Waiter {
        sched::Thread* thread;
        ListNode link;
        WaitResult result;
        SpinLock* lock;
        WaitQueue* queue;
        sched::Timer timeout;
    };
    static void on_timeout(sched::Timer& timer);

    IntrusiveList<Waiter, &Waiter::link> waiters_;
};

}  // namespace hvkvm::guest
