// Sleeping locks and signals for threads: Mutex (ownership handed to the longest waiter, so it
// is fair), Semaphore (counting; a signal hands its unit to the longest waiter) and Event
// (manual- or auto-reset). All may block: not for interrupt handlers (Event::set and
// Semaphore::signal excepted, which never block).
#pragma once

#include <stdint.h>

#include "kernel/sched/wait_queue.h"

namespace hvkvm::guest {

class Mutex {
public:
    void lock();
    bool try_lock();
    void unlock();  // panics unless the current thread owns it
    bool held_by_current_thread() const;

private:
    SpinLock lock_;
    sched::Thread* owner_ = nullptr;
    WaitQueue waiters_;
};

class MutexGuard {
public:
    explicit MutexGuard(Mutex& mutex) : mutex_(mutex) { mutex_.lock(); }
    ~MutexGuard() { mutex_.unlock(); }
    MutexGuard(const MutexGuard&) = delete;
    MutexGuard& operator=(const MutexGuard&) = delete;

private:
    Mutex& mutex_;
};

class Semaphore {
public:
    explicit Semaphore(uint64_t initial = 0) : count_(initial) {}
    void wait() { wait_until(kWaitForever); }
    // False if the deadline (time::now_ns() scale) passed without a unit.
    bool wait_until(uint64_t deadline_ns);
    bool try_wait();
    void signal(uint64_t units = 1);
    uint64_t count() const { return __atomic_load_n(&count_, __ATOMIC_RELAXED); }

private:
    SpinLock lock_;
    uint64_t count_;
    WaitQueue waiters_;
};

class Event {
public:
    enum class Reset { kManual, kAuto };
    explicit Event(Reset reset = Reset::kManual) : reset_(reset) {}
    // Manual: stays signalled and releases every waiter until reset(). Auto: releases exactly one
    // waiter (or the next thread to wait) and unsignals.
    void set();
    void reset();
    bool is_set() const { return __atomic_load_n(&signaled_, __ATOMIC_RELAXED); }
    void wait() { wait_until(kWaitForever); }
    bool wait_until(uint64_t deadline_ns);

private:
    SpinLock lock_;
    Reset reset_;
    bool signaled_ = false;
    WaitQueue waiters_;
};

}  // namespace hvkvm::guest
