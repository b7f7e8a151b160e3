// Ticket spinlock: FIFO-fair, so no CPU starves under contention. Holders must not sleep.
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
        const uint32_t ticket = __atomic_fetch_add(&next_ticket_, 1, __ATOMIC_RELAXED);
        while (__atomic_load_n(&now_serving_, __ATOMIC_ACQUIRE) != ticket) x86::pause();
    }

    bool try_lock() {
        uint32_t serving = __atomic_load_n(&now_serving_, __ATOMIC_RELAXED);
        uint32_t expected = serving;
        return __atomic_compare_exchange_n(&next_ticket_, &expected, serving + 1, false, __ATOMIC_ACQUIRE,
                                           __ATOMIC_RELAXED);
    }

    void unlock() {
        __atomic_store_n(&now_serving_, __atomic_load_n(&now_serving_, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
    }

    bool is_locked() const {
        return __atomic_load_n(&next_ticket_, __ATOMIC_RELAXED) != __atomic_load_n(&now_serving_, __ATOMIC_RELAXED);
    }

private:
    uint32_t next_ticket_ = 0;
    uint32_t now_serving_ = 0;
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
