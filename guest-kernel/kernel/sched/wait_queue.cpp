#include "kernel/sched/wait_queue.h"

#include "kernel/sched/scheduler.h"

namespace hvkvm::guest {

WaitResult WaitQueue::wait(SpinLock& lock, uint64_t deadline_ns) {
    Waiter waiter{sched::current_thread(), {}, WaitResult::kPending, &lock, this, {}};
    waiters_.push_back(waiter);
    const bool timed = deadline_ns != kWaitForever;
    if (timed) {
        waiter.timeout.callback = on_timeout;
        waiter.timeout.context = &waiter;
        sched::arm_timer(waiter.timeout, deadline_ns);
    }
    sched::block_and_unlock(lock);
    // Woken (or timed out): either way the outcome is settled. Make sure no timeout callback
    // still refers to `waiter` before it goes out of scope.
    if (timed) sched::cancel_timer(waiter.timeout);
    lock.lock();
    return waiter.result;
}

void WaitQueue::on_timeout(sched::Timer& timer) {
    auto& waiter = *static_cast<Waiter*>(timer.context);
    SpinLockGuard guard(*waiter.lock);  // interrupt context: interrupts are already off
    if (waiter.result != WaitResult::kPending) return;  // a waker got there first
    waiter.queue->waiters_.remove(waiter);
    waiter.result = WaitResult::kTimedOut;
    sched::wake_up(waiter.thread);
}

sched::Thread* WaitQueue::wake_one() {
    Waiter* waiter = waiters_.pop_front();
    if (!waiter) return nullptr;
    sched::Thread* thread = waiter->thread;
    waiter->result = WaitResult::kWoken;
    sched::wake_up(thread);  // `waiter` may be gone once its thread runs: not touched again
    return thread;
}

uint32_t WaitQueue::wake_all() {
    uint32_t woken = 0;
    while (wake_one()) ++woken;
    return woken;
}

}  // namespace hvkvm::guest
