// Spinlock for short critical sections. Holders must not sleep.
//
// A test-and-test-and-set lock with bounded backoff, not a fair (ticket or queued) lock: a fair
// lock hands the lock to the next waiter in line, and when that waiter's vCPU is descheduled by the
// host (more vCPUs than host cores) every other waiter spins until the host runs it again: a
// convoy that turns microseconds into seconds (measured here: 3 vCPUs on 2 host cores did not
// finish 60,000 contended acquisitions in 100 s; a test-and-set lock takes milliseconds). Linux
// makes the same choice on hypervisors without paravirtual spinlocks (virt_spin_lock).
//
// SpinLockGuard is for code that already runs with interrupts disabled (or never takes the lock
// from an interrupt handler); IrqSpinLockGuard also disables interrupts for the critical section,
// which any lock that an interrupt handler takes requires.
#pragma once

#include <stdint.h>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/platform/platform.h"

namespace hvkvm::guest {

class SpinLock {
public:
    constexpr SpinLock() = default;
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    void lock() {
        uint32_t backoff = 1;
        while (__atomic_exchange_n(&locked_, true, __ATOMIC_ACQUIRE)) {
            // Wait with plain reads (no cache-line ping-pong), backing off exponentially.
            do {
                for (uint32_t i = 0; i < backoff; ++i) x86::pause();
                if (backoff < kMaxBackoff) backoff *= 2;
            } while (__atomic_load_n(&locked_, __ATOMIC_RELAXED));
        }
    }

    bool try_lock() {
        return !__atomic_load_n(&locked_, __ATOMIC_RELAXED) && !__atomic_exchange_n(&locked_, true, __ATOMIC_ACQUIRE);
    }

    void unlock() { __atomic_store_n(&locked_, false, __ATOMIC_RELEASE); }

    bool is_locked() const { return __atomic_load_n(&locked_, __ATOMIC_RELAXED); }

private:
    static constexpr uint32_t kMaxBackoff = 64;  // pauses: ~1.6 us at 25 ns each
    bool locked_ = false;
};

class SpinLockGuard {
public:
    explicit SpinLockGuard(SpinLock& lock) : lock_(lock) { lock_.lock(); }
    ~SpinLockGuard() { lock_.unlock(); }
    SpinLockGuard(const SpinLockGuard&) = delete;
    SpinLockGuard& operator=(const SpinLockGuard&) = delete;

private:
    SpinLock& lock_;
};

class IrqSpinLockGuard {
public:
    explicit IrqSpinLockGuard(SpinLock& lock)
        : lock_(lock), interrupts_were_enabled_(platform::save_and_disable_interrupts()) {
        lock_.lock();
    }
    ~IrqSpinLockGuard() {
        lock_.unlock();
        platform::restore_interrupts(interrupts_were_enabled_);
    }
    IrqSpinLockGuard(const IrqSpinLockGuard&) = delete;
    IrqSpinLockGuard& operator=(const IrqSpinLockGuard&) = delete;

private:
    SpinLock& lock_;
    bool interrupts_were_enabled_;
};

}  // namespace hvkvm::guest
