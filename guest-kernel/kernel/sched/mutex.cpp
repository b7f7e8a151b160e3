#include "kernel/sched/mutex.h"

#include "kernel/panic.h"
#include "kernel/sched/scheduler.h"

namespace hvkvm::guest {

// Each primitive guards its state with an interrupt-disabling spinlock; InterruptsDisabled plus
// explicit lock()/unlock() is used where WaitQueue::wait drops and retakes the lock.

void Mutex::lock() {
    sched::Thread* self = sched::current_thread();
    platform::InterruptsDisabled no_interrupts;
    lock_.lock();
    if (owner_ == self) panic("mutex locked twice by thread %s", self->name);
    if (!owner_) owner_ = self;
    while (owner_ != self) waiters_.wait(lock_);  // unlock() hands ownership over directly
    lock_.unlock();
}

bool Mutex::try_lock() {
    IrqSpinLockGuard guard(lock_);
    if (owner_) return false;
    owner_ = sched::current_thread();
    return true;
}

void Mutex::unlock() {
    IrqSpinLockGuard guard(lock_);
    if (owner_ != sched::current_thread())
        panic("mutex unlocked by thread %s, which does not own it", sched::current_thread()->name);
    owner_ = waiters_.wake_one();  // the longest waiter, or nobody
}

bool Mutex::held_by_current_thread() const { return __atomic_load_n(&owner_, __ATOMIC_RELAXED) == sched::current_thread(); }

bool Semaphore::wait_until(uint64_t deadline_ns) {
    platform::InterruptsDisabled no_interrupts;
    lock_.lock();
    bool acquired = true;
    if (count_ > 0) --count_;
    else acquired = waiters_.wait(lock_, deadline_ns) == WaitResult::kWoken;  // woken = handed a unit
    lock_.unlock();
    return acquired;
}

bool Semaphore::try_wait() {
    IrqSpinLockGuard guard(lock_);
    if (count_ == 0) return false;
    --count_;
    return true;
}

void Semaphore::signal(uint64_t units) {
    IrqSpinLockGuard guard(lock_);
    for (; units; --units)
        if (!waiters_.wake_one()) ++count_;
}

void Event::set() {
    IrqSpinLockGuard guard(lock_);
    if (reset_ == Reset::kManual) {
        signaled_ = true;
        waiters_.wake_all();
    } else if (!waiters_.wake_one()) {
        signaled_ = true;
    }
}

void Event::reset() {
    IrqSpinLockGuard guard(lock_);
    signaled_ = false;
}

bool Event::wait_until(uint64_t deadline_ns) {
    platform::InterruptsDisabled no_interrupts;
    lock_.lock();
    bool released = true;
    if (signaled_) {
        if (reset_ == Reset::kAuto) signaled_ = false;
    } else {
        released = waiters_.wait(lock_, deadline_ns) == WaitResult::kWoken;
    }
    lock_.unlock();
    return released;
}

}  // namespace hvkvm::guest
