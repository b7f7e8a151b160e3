#include "kernel/sync/spinlock.h"

#include "arch/x86_64/per_cpu.h"
#include "hv/hypervisor.h"
#include "kernel/sync/cross_call.h"

namespace hvkvm::guest {

namespace detail {
SpinLockKind current_spinlock_kind = SpinLockKind::kTestAndSet;
}

namespace {

// A waiter halted in the hypervisor, per CPU: which lock and ticket it waits for.
struct WaitingFor {
    const PvTicketLock* lock;
    uint32_t ticket;
};
WaitingFor waiting_for[abi::kMaxVcpus];

// Slow-path counters (relaxed atomics: only waiters that halt and unlockers that kick touch them).
PvLockStats stats;

void count(uint64_t& counter) { __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED); }

// A backstop only: a lost kick would be a bug, but must not hang the CPU.
constexpr uint64_t kHaltLimit100ns = 10'000;  // 1 ms

// Waiters further back than the next in line cannot get the lock before another handover, so
// they spin only this long before halting: their spinning would only take host CPU away from the
// holder and the next waiter.
constexpr uint32_t kQueuedSpinDivisor = 16;

uint32_t spins_for(uint32_t distance, uint32_t spin_count) {
    return distance <= 1 ? spin_count : spin_count / kQueuedSpinDivisor;
}

}  // namespace

PvLockStats pv_lock_stats() {
    return {__atomic_load_n(&stats.halts, __ATOMIC_RELAXED), __atomic_load_n(&stats.woken_by_kick, __ATOMIC_RELAXED),
            __atomic_load_n(&stats.timeouts, __ATOMIC_RELAXED),
            __atomic_load_n(&stats.acquired_after_timeout, __ATOMIC_RELAXED),
            __atomic_load_n(&stats.kicks_sent, __ATOMIC_RELAXED)};
}

void set_spinlock_kind(SpinLockKind kind) { detail::current_spinlock_kind = kind; }
SpinLockKind spinlock_kind() { return detail::current_spinlock_kind; }

void PvTicketLock::lock_slow(uint32_t ticket) {
    const uint32_t spin_count = hv::recommended_spin_count();
    const bool may_notify = hv::available() && spin_count != abi::hv::kSpinCountNeverNotify;
    for (;;) {
        const uint32_t distance = ticket - __atomic_load_n(&serving_, __ATOMIC_ACQUIRE);
        const uint32_t spins = may_notify ? spins_for(distance, spin_count) : spin_count;
        for (uint32_t i = 0; i < spins; ++i) {
            if (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) == ticket) return;
            x86::pause();
        }
        if (!may_notify) continue;
        if (notify_ == Notify::kYield) {
            hv::notify_long_spin_wait(spin_count);
            continue;
        }
        // Announce (which lock, which ticket) before re-checking, so that an unlock either hands
        // over visibly or sees the announcement and kicks. Interrupts stay off so this thread
        // cannot move away from the slot it announced in.
        platform::InterruptsDisabled stay_on_this_cpu;
        WaitingFor& slot = waiting_for[this_cpu().index];
        __atomic_store_n(&slot.ticket, ticket, __ATOMIC_RELAXED);
        __atomic_store_n(&slot.lock, this, __ATOMIC_RELAXED);
        __atomic_fetch_add(&sleepers_, 1, __ATOMIC_SEQ_CST);
        bool timed_out = false;
        if (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) != ticket) {
            count(stats.halts);
            timed_out = hv::wait_for_kick(kHaltLimit100ns) == hv::Status::kTimeout;
            count(timed_out ? stats.timeouts : stats.woken_by_kick);
        }
        __atomic_store_n(&slot.lock, nullptr, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&sleepers_, 1, __ATOMIC_RELAXED);
        if (__atomic_load_n(&serving_, __ATOMIC_ACQUIRE) == ticket) {
            if (timed_out) count(stats.acquired_after_timeout);
            return;
        }
    }
}

// Kicks the new owner (`ticket`) if it halted, and the waiter after it, so that the next waiter is
// already spinning when its turn comes: its wake-up hides behind the current critical section.
void PvTicketLock::kick_waiter(uint32_t ticket) {
    uint32_t kicked = 0;
    for (uint64_t cpus = smp::online_mask(); cpus && kicked < 2; cpus &= cpus - 1) {
        const auto cpu = static_cast<uint32_t>(__builtin_ctzll(cpus));
        const WaitingFor& slot = waiting_for[cpu];
        if (__atomic_load_n(&slot.lock, __ATOMIC_RELAXED) != this) continue;
        const uint32_t waits_for = __atomic_load_n(&slot.ticket, __ATOMIC_RELAXED);
        if (waits_for == ticket || waits_for == ticket + 1) {
            hv::kick_vp(cpu);
            count(stats.kicks_sent);
            ++kicked;
        }
    }
}

}  // namespace hvkvm::guest
