// Locks and signals under contention from every CPU (with more threads than host cores, the
// vCPUs themselves are time-shared by the host: lock holders get descheduled mid-section).
#include "arch/x86_64/per_cpu.h"
#include "hv/hypervisor.h"
#include "kernel/console.h"
#include "kernel/sched/scheduler.h"
#include "kernel/smp/smp.h"
#include "kernel/sched/mutex.h"
#include "kernel/test/ktest.h"
#include "arch/x86_64/time.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

using test::Placement;

constexpr uint32_t kIterations = 20000;

// A counter updated with a plain (non-atomic) read-modify-write: only mutual exclusion keeps it
// exact. `inside` catches two holders at once directly.
struct Guarded {
    volatile uint64_t counter;
    volatile uint32_t inside;
    uint32_t overlaps;
};

void critical_section(Guarded& guarded) {
    if (__atomic_fetch_add(&guarded.inside, 1, __ATOMIC_ACQ_REL) != 0)
        __atomic_fetch_add(&guarded.overlaps, 1, __ATOMIC_RELAXED);
    guarded.counter = guarded.counter + 1;
    __atomic_fetch_sub(&guarded.inside, 1, __ATOMIC_ACQ_REL);
}

struct SpinRun {
    SpinLock lock;
    Guarded guarded;
};

void spin_increments(void* context, uint32_t) {
    auto& run = *static_cast<SpinRun*>(context);
    for (uint32_t i = 0; i < kIterations; ++i) {
        IrqSpinLockGuard guard(run.lock);
        critical_section(run.guarded);
    }
}

uint32_t contenders() {
    const uint32_t cpus = smp::online_count();
    return cpus > 1 ? cpus : 4;  // on one vCPU, time-shared threads still contend
}

}  // namespace

KTEST(sync, spinlock_is_exclusive_under_contention) {
    static SpinRun run;
    run.guarded = {};
    const uint32_t threads = contenders();
    KASSERT(test::run_in_threads(threads, Placement::kOnePerCpu, spin_increments, &run));
    KEXPECT_EQ(run.guarded.counter, uint64_t{threads} * kIterations);
    KEXPECT_EQ(run.guarded.overlaps, 0u);
    KEXPECT(!run.lock.is_locked());
}

namespace {

// The same exclusion check for each spinlock algorithm explicitly (the kernel's SpinLock is one
// of them, chosen at boot).
template <typename Lock>
struct AlgorithmRun {
    Lock lock;
    Guarded guarded;
};

template <typename Lock>
void algorithm_increments(void* context, uint32_t) {
    auto& run = *static_cast<AlgorithmRun<Lock>*>(context);
    for (uint32_t i = 0; i < kIterations / 4; ++i) {
        platform::InterruptsDisabled no_interrupts;
        run.lock.lock();
        critical_section(run.guarded);
        run.lock.unlock();
    }
}

template <typename Lock>
void check_algorithm(ktest::Context& ktest_context, AlgorithmRun<Lock>& run) {
    run.guarded = {};
    const uint32_t threads = contenders();
    KASSERT(test::run_in_threads(threads, Placement::kOnePerCpu, algorithm_increments<Lock>, &run));
    KEXPECT_EQ(run.guarded.counter, uint64_t{threads} * (kIterations / 4));
    KEXPECT_EQ(run.guarded.overlaps, 0u);
}

struct PvYieldLock : PvTicketLock {
    PvYieldLock() : PvTicketLock(Notify::kYield) {}
};

}  // namespace

KTEST(sync, every_spinlock_algorithm_is_exclusive) {
    static AlgorithmRun<TasLock> tas;
    static AlgorithmRun<TicketLock> ticket;
    static AlgorithmRun<PvTicketLock> pv_kick;
    static AlgorithmRun<PvYieldLock> pv_yield;
    check_algorithm(ktest_context, tas);
    check_algorithm(ktest_context, pv_kick);
    check_algorithm(ktest_context, pv_yield);
    if (smp::online_count() <= 2) check_algorithm(ktest_context, ticket);  // naive: convoys if overcommitted
    KEXPECT(!pv_kick.lock.is_locked());
}

KTEST(sync, kernel_spinlock_follows_the_hypervisor_recommendation) {
    const bool notify = hv::available() && hv::recommended_spin_count() != abi::hv::kSpinCountNeverNotify;
    KEXPECT(spinlock_kind() == (notify ? SpinLockKind::kParavirtualTicket : SpinLockKind::kTestAndSet));
}

namespace {

struct MutexRun {
    Mutex mutex;
    Guarded guarded;
};

void mutex_increments(void* context, uint32_t index) {
    auto& run = *static_cast<MutexRun*>(context);
    for (uint32_t i = 0; i < kIterations / 4; ++i) {
        MutexGuard guard(run.mutex);
        critical_section(run.guarded);
        if ((i + index) % 64 == 0) sched::yield();  // hold it across a reschedule now and then
    }
}

}  // namespace

KTEST(sync, mutex_is_exclusive_even_when_holders_block) {
    static MutexRun run;
    run.guarded = {};
    const uint32_t threads = contenders() * 2;
    KASSERT(test::run_in_threads(threads, Placement::kFree, mutex_increments, &run));
    KEXPECT_EQ(run.guarded.counter, uint64_t{threads} * (kIterations / 4));
    KEXPECT_EQ(run.guarded.overlaps, 0u);
    KEXPECT(run.mutex.try_lock());
    run.mutex.unlock();
}

namespace {

struct SemaphoreRun {
    Semaphore permits{2};
    uint32_t inside;
    uint32_t most_inside;
};

void use_permit(void* context, uint32_t) {
    auto& run = *static_cast<SemaphoreRun*>(context);
    for (int i = 0; i < 50; ++i) {
        run.permits.wait();
        const uint32_t now_inside = __atomic_add_fetch(&run.inside, 1, __ATOMIC_ACQ_REL);
        uint32_t most = __atomic_load_n(&run.most_inside, __ATOMIC_RELAXED);
        while (now_inside > most && !__atomic_compare_exchange_n(&run.most_inside, &most, now_inside, false,
                                                                 __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        sched::sleep_ns(100'000);
        __atomic_sub_fetch(&run.inside, 1, __ATOMIC_ACQ_REL);
        run.permits.signal();
    }
}

}  // namespace

KTEST(sync, semaphore_bounds_concurrency) {
    static SemaphoreRun run;
    run.inside = run.most_inside = 0;
    KASSERT(test::run_in_threads(6, Placement::kFree, use_permit, &run));
    KEXPECT_EQ(run.most_inside, 2u);
    KEXPECT_EQ(run.permits.count(), 2u);
}

KTEST(sync, semaphore_wait_times_out) {
    Semaphore empty(0);
    const uint64_t start = time::now_ns();
    KEXPECT(!empty.wait_until(start + 10'000'000));
    KEXPECT(time::now_ns() - start >= 10'000'000);
    empty.signal();
    KEXPECT(empty.wait_until(time::now_ns() + 10'000'000));
    KEXPECT(!empty.try_wait());
}

namespace {

struct EventRun {
    Event event;
    uint32_t released;
    uint32_t timed_out;
    uint32_t ready;
};

void wait_for_event(void* context, uint32_t) {
    auto& run = *static_cast<EventRun*>(context);
    __atomic_fetch_add(&run.ready, 1, __ATOMIC_RELAXED);
    if (run.event.wait_until(time::now_ns() + 200'000'000)) __atomic_fetch_add(&run.released, 1, __ATOMIC_RELAXED);
    else __atomic_fetch_add(&run.timed_out, 1, __ATOMIC_RELAXED);
}

struct EventSetter {
    EventRun* run;
    uint32_t sets;
    uint32_t waiters;
};

void set_when_waiters_ready(void* context) {
    auto& setter = *static_cast<EventSetter*>(context);
    while (__atomic_load_n(&setter.run->ready, __ATOMIC_RELAXED) < setter.waiters) sched::sleep_ns(1'000'000);
    sched::sleep_ns(5'000'000);  // let them block
    for (uint32_t i = 0; i < setter.sets; ++i) setter.run->event.set();
}

void run_event_case(ktest::Context& ktest_context, EventRun& run, uint32_t waiters, uint32_t sets) {
    EventSetter setter{&run, sets, waiters};
    sched::Thread* thread = sched::create_thread(set_when_waiters_ready, &setter);
    KASSERT(thread != nullptr);
    KASSERT(test::run_in_threads(waiters, Placement::kFree, wait_for_event, &run));
    sched::join(thread);
}

}  // namespace

KTEST(sync, manual_reset_event_releases_every_waiter) {
    static EventRun run{Event(Event::Reset::kManual), 0, 0, 0};
    run_event_case(ktest_context, run, 4, 1);
    KEXPECT_EQ(run.released, 4u);
    KEXPECT(run.event.is_set());
    KEXPECT(run.event.wait_until(time::now_ns()));  // stays set
}

KTEST(sync, auto_reset_event_releases_one_waiter_per_set) {
    static EventRun run{Event(Event::Reset::kAuto), 0, 0, 0};
    run_event_case(ktest_context, run, 4, 3);
    KEXPECT_EQ(run.released, 3u);
    KEXPECT_EQ(run.timed_out, 1u);
    KEXPECT(!run.event.is_set());
}

namespace {

constexpr uint32_t kSlots = 8;
constexpr uint32_t kItemsPerProducer = 2000;

// A bounded buffer: producers and consumers on all CPUs, a mutex plus two counting semaphores.
struct BoundedBuffer {
    Mutex mutex;
    Semaphore free_slots{kSlots};
    Semaphore filled_slots{0};
    uint64_t slots[kSlots];
    uint32_t head, tail;
    uint64_t produced_sum, consumed_sum;
    uint32_t consumed_count;
};

void produce_or_consume(void* context, uint32_t index) {
    auto& buffer = *static_cast<BoundedBuffer*>(context);
    const bool producer = index % 2 == 0;
    for (uint32_t i = 0; i < kItemsPerProducer; ++i) {
        if (producer) {
            const uint64_t item = uint64_t{index} * 100000 + i + 1;
            buffer.free_slots.wait();
            {
                MutexGuard guard(buffer.mutex);
                buffer.slots[buffer.tail++ % kSlots] = item;
                buffer.produced_sum += item;
            }
            buffer.filled_slots.signal();
        } else {
            buffer.filled_slots.wait();
            {
                MutexGuard guard(buffer.mutex);
                buffer.consumed_sum += buffer.slots[buffer.head++ % kSlots];
                ++buffer.consumed_count;
            }
            buffer.free_slots.signal();
        }
    }
}

}  // namespace

KTEST(sync, producers_and_consumers_lose_nothing) {
    static BoundedBuffer buffer;
    buffer.head = buffer.tail = 0;
    buffer.produced_sum = buffer.consumed_sum = 0;
    buffer.consumed_count = 0;
    const uint32_t threads = (contenders() + 1) / 2 * 2;  // even: as many consumers as producers
    KASSERT(test::run_in_threads(threads, Placement::kOnePerCpu, produce_or_consume, &buffer));
    KEXPECT_EQ(buffer.consumed_count, threads / 2 * kItemsPerProducer);
    KEXPECT_EQ(buffer.consumed_sum, buffer.produced_sum);
    KEXPECT_EQ(buffer.free_slots.count(), kSlots);
    KEXPECT_EQ(buffer.filled_slots.count(), 0u);
}

}  // namespace hvkvm::guest

namespace hvkvm::guest {
namespace {

// One holder keeps the lock long enough that the waiter spins out and halts in the hypervisor;
// the unlock must then kick it.
struct KickRun {
    PvTicketLock lock;
    uint32_t rounds;
    uint32_t held;      // round the holder is in, once it holds the lock
    uint32_t waiting;   // round the waiter is in, once it is about to take the lock
    uint32_t acquired;  // rounds the waiter has finished
};

void hold_or_wait(void* context, uint32_t index) {
    auto& run = *static_cast<KickRun*>(context);
    for (uint32_t round = 1; round <= run.rounds; ++round) {
        if (index == 0) {
            while (__atomic_load_n(&run.acquired, __ATOMIC_ACQUIRE) != round - 1) x86::pause();
            platform::InterruptsDisabled no_interrupts;
            run.lock.lock();
            __atomic_store_n(&run.held, round, __ATOMIC_RELEASE);
            while (__atomic_load_n(&run.waiting, __ATOMIC_ACQUIRE) != round) x86::pause();
            time::spin_for_ns(3'000'000);  // far longer than the waiter spins before halting
            run.lock.unlock();
        } else {
            while (__atomic_load_n(&run.held, __ATOMIC_ACQUIRE) != round) x86::pause();
            platform::InterruptsDisabled no_interrupts;
            __atomic_store_n(&run.waiting, round, __ATOMIC_RELEASE);
            run.lock.lock();
            run.lock.unlock();
            __atomic_store_n(&run.acquired, round, __ATOMIC_RELEASE);
        }
    }
}

}  // namespace

KTEST(sync, pv_lock_waiters_are_kicked_not_timed_out) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: a holder and a waiter");
    KSKIP_UNLESS(hv::available() && hv::recommended_spin_count() != abi::hv::kSpinCountNeverNotify,
                 "the hypervisor does not recommend spin-then-notify (enlightenments.spinlock=false)");
    static KickRun run;
    run.rounds = 30;
    run.held = run.waiting = run.acquired = 0;
    const PvLockStats before = pv_lock_stats();
    KASSERT(test::run_in_threads(2, test::Placement::kOnePerCpu, hold_or_wait, &run));
    const PvLockStats after = pv_lock_stats();
    const uint64_t halts = after.halts - before.halts;
    const uint64_t kicked = after.woken_by_kick - before.woken_by_kick;
    const uint64_t lost_kicks = after.acquired_after_timeout - before.acquired_after_timeout;
    kprint("    %lu halts, %lu woken by a kick, %lu timeouts, %lu hand-overs found only after a timeout\n", halts,
           kicked, after.timeouts - before.timeouts, lost_kicks);
    // The waiter halted (in most rounds: the host may deschedule its vCPU for a whole round),
    // and woke by a kick or, holding 3 ms against a 1 ms backstop, by timeouts while the lock was
    // still held. A hand-over it discovers only when the backstop expires is a lost kick; one can
    // race legitimately (the unlock lands just as the halt times out), so allow very few.
    KEXPECT(halts >= run.rounds / 2);
    KEXPECT(kicked > 0);
    KEXPECT(lost_kicks <= run.rounds / 10);
}

}  // namespace hvkvm::guest
