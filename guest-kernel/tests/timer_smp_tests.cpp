// Per-CPU timer queues and cross-CPU calls (IPIs).
#include "arch/x86_64/per_cpu.h"
#include "hvkvm/abi/boot.h"
#include "kernel/console.h"
#include "kernel/sched/scheduler.h"
#include "kernel/sched/timer.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "arch/x86_64/time.h"
#include "lib/random.h"
#include "lib/string.h"
#include "mm/paging.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

constexpr uint32_t kTimers = 32;
// One slot per timer, and one per CPU for each_cpu_runs_its_own_queue: with 32 slots, 33 vCPUs or
// more wrote past the arrays and crashed the kernel in a later timer operation.
constexpr uint32_t kSlots = kTimers > abi::kMaxVcpus ? kTimers : abi::kMaxVcpus;

struct TimerLog {
    sched::Timer timers[kSlots];
    uint32_t fired_order[kSlots];
    uint32_t fired_count;
    uint32_t fired_on_cpu[kSlots];
};

void record_firing(sched::Timer& timer) {
    auto& log = *static_cast<TimerLog*>(timer.context);
    const auto index = static_cast<uint32_t>(&timer - log.timers);
    const uint32_t slot = __atomic_fetch_add(&log.fired_count, 1, __ATOMIC_RELAXED);
    log.fired_order[slot] = index;
    log.fired_on_cpu[index] = this_cpu().index;
}

}  // namespace

KTEST(timer, timers_fire_in_deadline_order) {
    static TimerLog log;
    log = {};
    Random random(99);
    const uint64_t base = time::now_ns() + 2'000'000;
    {
        platform::InterruptsDisabled no_interrupts;  // arm them all on this CPU
        for (uint32_t i = 0; i < kTimers; ++i) {
            log.timers[i].callback = record_firing;
            log.timers[i].context = &log;
            sched::arm_timer(log.timers[i], base + random.below(20'000'000));
        }
    }
    sched::sleep_ns(40'000'000);
    KASSERT(__atomic_load_n(&log.fired_count, __ATOMIC_ACQUIRE) == kTimers);
    for (uint32_t i = 1; i < kTimers; ++i)
        KEXPECT(log.timers[log.fired_order[i - 1]].deadline_ns <= log.timers[log.fired_order[i]].deadline_ns);
}

KTEST(timer, cancelled_timers_never_fire) {
    static TimerLog log;
    log = {};
    const uint64_t deadline = time::now_ns() + 5'000'000;
    for (uint32_t i = 0; i < 10; ++i) {
        log.timers[i].callback = record_firing;
        log.timers[i].context = &log;
        sched::arm_timer(log.timers[i], deadline + i * 100'000);
    }
    for (uint32_t i = 1; i < 10; i += 2) KEXPECT(sched::cancel_timer(log.timers[i]));
    sched::sleep_ns(20'000'000);
    KEXPECT_EQ(log.fired_count, 5u);
    for (uint32_t i = 0; i < log.fired_count; ++i) KEXPECT_EQ(log.fired_order[i] % 2, 0u);
    KEXPECT(!sched::cancel_timer(log.timers[0]));  // already fired
}

namespace {

TimerLog per_cpu_log;

void arm_here(void* argument) {
    auto index = static_cast<uint32_t>(reinterpret_cast<uint64_t>(argument));
    per_cpu_log.timers[index].callback = record_firing;
    per_cpu_log.timers[index].context = &per_cpu_log;
    sched::arm_timer(per_cpu_log.timers[index], time::now_ns() + 3'000'000);
}

}  // namespace

KTEST(timer, each_cpu_runs_its_own_queue) {
    per_cpu_log = {};
    const uint32_t cpus = smp::online_count();
    for (uint32_t i = 0; i < cpus; ++i)
        smp::run_on_cpu(test::nth_online_cpu(i), arm_here, reinterpret_cast<void*>(uint64_t{i}));
    sched::sleep_ns(30'000'000);
    KEXPECT_EQ(per_cpu_log.fired_count, cpus);
    for (uint32_t i = 0; i < cpus; ++i) KEXPECT_EQ(per_cpu_log.fired_on_cpu[i], test::nth_online_cpu(i));
}

namespace {

void record_cpu(void* argument) { *static_cast<uint32_t*>(argument) = this_cpu().index; }
void count_call(void* argument) { __atomic_fetch_add(static_cast<uint32_t*>(argument), 1, __ATOMIC_RELAXED); }

}  // namespace

KTEST(smp, function_runs_on_the_cpu_asked_for) {
    for (uint32_t cpu = 0; cpu < smp::configured_cpu_count(); ++cpu) {
        uint32_t ran_on = ~0u;
        smp::run_on_cpu(cpu, record_cpu, &ran_on);
        KEXPECT_EQ(ran_on, cpu);
    }
}

KTEST(smp, broadcast_reaches_every_other_cpu_even_with_interrupts_off) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: a broadcast to the others");
    uint32_t calls = 0;
    smp::run_on_other_cpus(count_call, &calls);
    KEXPECT_EQ(calls, smp::online_count() - 1);
    {
        platform::InterruptsDisabled no_interrupts;  // the caller must keep serving its own mailbox
        smp::run_on_other_cpus(count_call, &calls);
    }
    KEXPECT_EQ(calls, 2 * (smp::online_count() - 1));
}

namespace {

// Every CPU at once: cross-calls to all others plus stack allocation (TLB shootdowns), so that
// CPUs call each other simultaneously.
void cross_call_storm(void* context, uint32_t) {
    auto* calls = static_cast<uint32_t*>(context);
    for (int round = 0; round < 50; ++round) {
        smp::run_on_other_cpus(count_call, calls);
        mm::KernelStack stack;
        if (mm::allocate_stack(8192, stack)) mm::free_stack(stack);
    }
}

}  // namespace

KTEST(smp, simultaneous_cross_calls_do_not_deadlock) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs calling each other");
    const uint32_t cpus = smp::online_count();
    uint32_t calls = 0;
    KASSERT(test::run_in_threads(cpus, test::Placement::kOnePerCpu, cross_call_storm, &calls));
    KEXPECT_EQ(calls, cpus * 50 * (cpus - 1));
}

KTEST(smp, cross_call_round_trip_time) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: a cross-call to another CPU");
    const uint32_t target = test::last_online_cpu();
    uint32_t sink = 0;
    constexpr uint32_t kRounds = 200;
    const uint64_t start = time::now_ns();
    for (uint32_t i = 0; i < kRounds; ++i) smp::run_on_cpu(target, count_call, &sink);
    const uint64_t per_call_ns = (time::now_ns() - start) / kRounds;
    KEXPECT_EQ(sink, kRounds);
    kprint("    cross-call to vCPU %u and back: %lu us\n", target, per_call_ns / 1000);
}

}  // namespace hvkvm::guest

namespace hvkvm::guest {
namespace {

abi::VcpuStartRequest valid_start_request(uint32_t cpu) {
    abi::VcpuStartRequest request{};
    request.vcpu_index = cpu;
    request.rip = 0x100000;
    request.rsp = 0x200000;
    request.cr3 = mm::kernel_page_table_root();
    return request;
}

}  // namespace

KTEST(smp, a_second_start_of_a_running_vp_is_refused_and_it_keeps_working) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs a second vCPU that is running");
    const uint32_t cpu = test::last_online_cpu();
    static abi::VcpuStartRequest request;  // in the kernel image: RAM below 4 GiB
    request = valid_start_request(cpu);
    KEXPECT_EQ(static_cast<uint32_t>(smp::request_vcpu_start(request)),
               static_cast<uint32_t>(abi::VcpuStartStatus::kAlreadyStarted));
    uint32_t ran_on = ~0u;
    smp::run_on_cpu(cpu, record_cpu, &ran_on);
    KEXPECT_EQ(ran_on, cpu);
}

KTEST(smp, the_vmm_answers_every_refused_start_request) {
    auto status_of = [](abi::VcpuStartRequest& request) { return static_cast<uint32_t>(smp::request_vcpu_start(request)); };
    static abi::VcpuStartRequest request;
    const auto invalid_vcpu = static_cast<uint32_t>(abi::VcpuStartStatus::kInvalidVcpu);
    const auto invalid_state = static_cast<uint32_t>(abi::VcpuStartStatus::kInvalidState);
    request = valid_start_request(0);  // the boot vCPU
    KEXPECT_EQ(status_of(request), invalid_vcpu);
    request = valid_start_request(smp::configured_cpu_count());  // one past the last vCPU
    KEXPECT_EQ(status_of(request), invalid_vcpu);
    request = valid_start_request(abi::kMaxVcpus);
    KEXPECT_EQ(status_of(request), invalid_vcpu);
    // A misaligned request is refused with status 2 (abi.md), written where its status field is.
    static uint64_t buffer[8];
    auto* misaligned = reinterpret_cast<abi::VcpuStartRequest*>(reinterpret_cast<uint8_t*>(buffer) + 4);
    const abi::VcpuStartRequest copy = valid_start_request(smp::configured_cpu_count() - 1);
    memcpy(misaligned, &copy, sizeof copy);
    KEXPECT_EQ(status_of(*misaligned), static_cast<uint32_t>(abi::VcpuStartStatus::kInvalidRequest));

    // The entry state is checked before whether the vCPU runs already, so a running one serves.
    KSKIP_UNLESS(smp::online_count() >= 2, "the entry-state checks need a second vCPU index");
    const uint32_t cpu = test::last_online_cpu();
    request = valid_start_request(cpu);
    request.rip = 0x0000800000000000ull;  // not canonical
    KEXPECT_EQ(status_of(request), invalid_state);
    request = valid_start_request(cpu);
    request.rsp = 0xffff7fffffffffffull;  // not canonical
    KEXPECT_EQ(status_of(request), invalid_state);
    request = valid_start_request(cpu);
    request.cr3 = 0x0000400000000000ull;  // not RAM
    KEXPECT_EQ(status_of(request), invalid_state);
    request = valid_start_request(cpu);
    request.cr3 += 8;  // not page-aligned
    KEXPECT_EQ(status_of(request), invalid_state);
}

}  // namespace hvkvm::guest
