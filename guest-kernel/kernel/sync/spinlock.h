// Spinlocks for short critical sections. Holders must not sleep.
//
// Which algorithm the kernel's SpinLock uses depends on the platform, decided once at boot:
//   - PvTicketLock when the hypervisor recommends spin-then-notify (CPUID 0x40000004 EBX): fair,
//     and a waiter that has spun the recommended count halts in the hypervisor until the unlocker
//     kicks it, so a descheduled waiter or holder costs no spinning host CPU;
//   - TasLock otherwise: test-and-test-and-set. A fair lock without paravirtual help convoys when
//     vCPUs outnumber host cores: the lock is handed to the next waiter in line, and if the host
//     has descheduled that vCPU everyone waits for the host to run it (measured here: 3 vCPUs on
//     2 host cores did not finish 60,000 contended acquisitions in 100 s). Linux makes the same
//     choice on hypervisors without paravirtual spinlocks (virt_spin_lock).
// TicketLock (naive, fair) exists for comparison in the spinlock benchmark.
//
// SpinLockGuard is for code that already runs with interrupts disabled (or never takes the lock
// from an interrupt handler); IrqSpinLockGuard also disables interrupts for the critical section,
// which any lock that an interrupt handler takes requires.
#pragma once

#include <stdint.h>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/platform/platform.h"

namespace hvkvm::guest {

class TasLock {
public:
    constexpr TasLock() = default;
    TasLock(const TasLock&) = delete;
    TasLock& operator=(const TasLock&) = delete;

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

class TicketLock {
public:
    constexpr TicketLock() = default;
    TicketLock(const TicketLock&) = delete;
    TicketLock& operator=(const TicketLock&) = delete;

    void lock() {
        const uint32_t ticket = __atomic_fetch_add(&next_, 1, __ATOMIC_RELAXED);
        while (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) != ticket) x86::pause();
    }
    void unlock() { __atomic_store_n(&serving_, __atomic_load_n(&serving_, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE); }

private:
    uint32_t next_ = 0;
    uint32_t serving_ = 0;
};

class PvTicketLock {
public:
    // How a waiter that has spun the recommended count notifies the hypervisor.
    enum class Notify : uint8_t {
        kHaltUntilKicked,  // WaitForKick; the unlocker kicks the next ticket's waiter (KickVp)
        kYield,            // NotifyLongSpinWait (the VMM yields the vCPU thread), then spin again
    };

    constexpr explicit PvTicketLock(Notify notify = Notify::kHaltUntilKicked) : notify_(notify) {}
    PvTicketLock(const PvTicketLock&) = delete;
    PvTicketLock& operator=(const PvTicketLock&) = delete;

    void lock() {
        const uint32_t ticket = __atomic_fetch_add(&next_, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) != ticket) lock_slow(ticket);
    }

    bool try_lock() {
        uint32_t serving = __atomic_load_n(&serving_, __ATOMIC_RELAXED);
        uint32_t expected = serving;
        return __atomic_compare_exchange_n(&next_, &expected, serving + 1, false, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    }

    void unlock() {
        const uint32_t next_ticket = __atomic_load_n(&serving_, __ATOMIC_RELAXED) + 1;
        if (notify_ != Notify::kHaltUntilKicked) {
            __atomic_store_n(&serving_, next_ticket, __ATOMIC_RELEASE);
            return;
        }
        // A full barrier between publishing the new ticket and looking for halted waiters, paired
        // with the waiter's announce-then-recheck: either it sees the new ticket, or this sees it
        // halted. xchg is that barrier and costs less than a store plus mfence.
        __atomic_exchange_n(&serving_, next_ticket, __ATOMIC_SEQ_CST);
        if (__atomic_load_n(&sleepers_, __ATOMIC_RELAXED)) kick_waiter(next_ticket);
    }

    bool is_locked() const {
        return __atomic_load_n(&next_, __ATOMIC_RELAXED) != __atomic_load_n(&serving_, __ATOMIC_RELAXED);
    }

private:
    void lock_slow(uint32_t ticket);
    void kick_waiter(uint32_t ticket);

    uint32_t next_ = 0;      // ticket dispenser
    uint32_t serving_ = 0;   // ticket that may hold the lock
    uint32_t sleepers_ = 0;  // waiters halted in the hypervisor
    Notify notify_;
};

// What paravirtual ticket-lock waiters did in the hypervisor, summed over every lock since boot.
// A waiter that halts must be woken by the unlocker's kick; the 1 ms halt limit is only a
// backstop, so `acquired_after_timeout` counts hand-overs whose kick never came (a lost kick),
// which tests assert stays near zero.
struct PvLockStats {
    uint64_t halts;                   // WaitForKick calls
    uint64_t woken_by_kick;
    uint64_t timeouts;                // the halt limit expired
    uint64_t acquired_after_timeout;  // ... and the lock had been handed to the waiter meanwhile
    uint64_t kicks_sent;
};
PvLockStats pv_lock_stats();

enum class SpinLockKind : uint8_t { kTestAndSet, kParavirtualTicket };

// Chosen once by the boot CPU, while no SpinLock is held (after the hypervisor interface is known).
void set_spinlock_kind(SpinLockKind kind);
SpinLockKind spinlock_kind();

namespace detail {
extern SpinLockKind current_spinlock_kind;
}

class SpinLock {
public:
    constexpr SpinLock() = default;
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    void lock() { paravirtual() ? ticket_.lock() : tas_.lock(); }
    bool try_lock() { return paravirtual() ? ticket_.try_lock() : tas_.try_lock(); }
    void unlock() { paravirtual() ? ticket_.unlock() : tas_.unlock(); }
    bool is_locked() const { return paravirtual() ? ticket_.is_locked() : tas_.is_locked(); }

private:
    static bool paravirtual() { return detail::current_spinlock_kind == SpinLockKind::kParavirtualTicket; }
    TasLock tas_;
    PvTicketLock ticket_;
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
