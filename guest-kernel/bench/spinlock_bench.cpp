#include "bench/spinlock_bench.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hv/hypervisor.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/sync/spinlock.h"
#include "arch/x86_64/time.h"

namespace hvkvm::guest::bench {
namespace {

constexpr uint64_t kCaseDurationNs = 100'000'000;
// Each case is measured this many times, rounds interleaved across the algorithms so that slow
// drifts of the (shared, nested) host hit all of them alike; the median round is reported.
constexpr uint32_t kRounds = 7;
constexpr uint32_t kMaxThreads = abi::kMaxVcpus;

// The lock-protected state: two cache lines that every holder updates (the "short critical
// section"), and the holder's local work between acquisitions.
struct alignas(64) SharedData {
    volatile uint64_t words[16];
};

enum class Algorithm { kTicket, kTestAndSet, kPvYield, kPvKick };
constexpr Algorithm kAlgorithms[] = {Algorithm::kTicket, Algorithm::kTestAndSet, Algorithm::kPvYield, Algorithm::kPvKick};

const char* name_of(Algorithm algorithm) {
    switch (algorithm) {
    case Algorithm::kTicket: return "ticket (naive)";
    case Algorithm::kTestAndSet: return "test-and-set";
    case Algorithm::kPvYield: return "pv ticket, yield";
    case Algorithm::kPvKick: return "pv ticket, halt+kick";
    }
    return "?";
}

struct Case {
    Algorithm algorithm;
    TicketLock ticket;
    TasLock tas;
    PvTicketLock pv_yield{PvTicketLock::Notify::kYield};
    PvTicketLock pv_kick{PvTicketLock::Notify::kHaltUntilKicked};
    SharedData data;
    uint64_t start_ns;
    uint64_t stop_ns;
    uint32_t ready;
    uint64_t acquisitions[kMaxThreads];

    void lock() {
        switch (algorithm) {
        case Algorithm::kTicket: ticket.lock(); break;
        case Algorithm::kTestAndSet: tas.lock(); break;
        case Algorithm::kPvYield: pv_yield.lock(); break;
        case Algorithm::kPvKick: pv_kick.lock(); break;
        }
    }
    void unlock() {
        switch (algorithm) {
        case Algorithm::kTicket: ticket.unlock(); break;
        case Algorithm::kTestAndSet: tas.unlock(); break;
        case Algorithm::kPvYield: pv_yield.unlock(); break;
        case Algorithm::kPvKick: pv_kick.unlock(); break;
        }
    }
};

struct Worker {
    Case* run;
    uint32_t index;
    uint32_t threads;
};

void contend(void* argument) {
    const Worker& worker = *static_cast<Worker*>(argument);
    Case& run = *worker.run;
    // Wait for the others with interrupts on: the thread creating the workers may share this CPU
    // and must be able to run (and be preempted back to) until every worker exists.
    __atomic_fetch_add(&run.ready, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&run.ready, __ATOMIC_ACQUIRE) < worker.threads) sched::yield();
    while (time::now_ns() < run.start_ns) sched::yield();
    platform::InterruptsDisabled like_a_kernel_lock;  // and no guest preemption: one thread per vCPU
    uint64_t count = 0;
    volatile uint64_t local = 0;
    while (time::now_ns() < run.stop_ns) {
        run.lock();
        for (uint32_t i = 0; i < 16; i += 4) run.data.words[i] = run.data.words[i] + 1;
        run.unlock();
        for (int i = 0; i < 40; ++i) local = local + i;  // work outside the lock
        ++count;
    }
    run.acquisitions[worker.index] = count;
}

struct Result {
    uint64_t per_second;
    uint32_t jain_milli;  // Jain's index x 1000: (sum x)^2 / (n * sum x^2); 1000 = perfectly fair
    uint64_t least, most;
};

// Jain's fairness index in thousandths, in integers (the kernel has no floating point). Counts are
// scaled down first so that sum^2 * 1000 cannot overflow.
uint32_t jain_milli(const uint64_t* counts, uint32_t n) {
    uint64_t sum = 0;
    for (uint32_t i = 0; i < n; ++i) sum += counts[i];
    uint32_t shift = 0;
    while ((sum >> shift) > 50'000'000) ++shift;
    uint64_t scaled_sum = 0, squares = 0;
    for (uint32_t i = 0; i < n; ++i) {
        const uint64_t x = counts[i] >> shift;
        scaled_sum += x;
        squares += x * x;
    }
    if (squares == 0) return 0;
    return static_cast<uint32_t>(scaled_sum * 1000 / n * scaled_sum / squares);
}

Result measure(Case& run, uint32_t threads) {
    static Worker workers[kMaxThreads];
    sched::Thread* handles[kMaxThreads];
    run.ready = 0;
    run.start_ns = time::now_ns() + 20'000'000;  // all threads start together
    run.stop_ns = run.start_ns + kCaseDurationNs;
    for (uint32_t i = 0; i < threads; ++i) {
        workers[i] = Worker{&run, i, threads};
        sched::ThreadOptions options;
        options.name = "lock-bench";
        options.ideal_cpu = i;
        options.affinity = 1ull << i;
        handles[i] = sched::create_thread(contend, &workers[i], options);
    }
    for (uint32_t i = 0; i < threads; ++i)
        if (handles[i]) sched::join(handles[i]);
    Result result{0, jain_milli(run.acquisitions, threads), ~0ull, 0};
    uint64_t sum = 0;
    for (uint32_t i = 0; i < threads; ++i) {
        sum += run.acquisitions[i];
        if (run.acquisitions[i] < result.least) result.least = run.acquisitions[i];
        if (run.acquisitions[i] > result.most) result.most = run.acquisitions[i];
    }
    result.per_second = sum * (1'000'000'000 / kCaseDurationNs) + sum * (1'000'000'000 % kCaseDurationNs) / kCaseDurationNs;
    return result;
}

// The median round by throughput, plus the lowest and highest throughput of all rounds.
struct Summary {
    Result median;
    uint64_t lowest, highest;
};

Summary summarize(Result (&rounds)[kRounds]) {
    // Insertion sort by throughput: seven elements.
    for (uint32_t i = 1; i < kRounds; ++i)
        for (uint32_t j = i; j > 0 && rounds[j].per_second < rounds[j - 1].per_second; --j) {
            const Result swap = rounds[j];
            rounds[j] = rounds[j - 1];
            rounds[j - 1] = swap;
        }
    return Summary{rounds[kRounds / 2], rounds[0].per_second, rounds[kRounds - 1].per_second};
}

void print_summary(uint32_t threads, uint32_t host_cpus, Algorithm algorithm, const Summary& summary) {
    const Result& r = summary.median;
    kprint("  %7u  %4u.%ux  %-22s %12lu  %10lu..%-10lu  %3u.%03u  %10lu %10lu\n", threads, threads / host_cpus,
           (threads * 10 / host_cpus) % 10, name_of(algorithm), r.per_second, summary.lowest, summary.highest,
           r.jain_milli / 1000, r.jain_milli % 1000, r.least, r.most);
}

}  // namespace

bool run_spinlock_benchmark() {
    const uint32_t host_cpus = hv::host_logical_processors();
    const uint32_t vcpus = smp::online_count();
    if (!hv::available() || host_cpus == 0) {
        kprint("bench spinlock: needs the hypervisor interface (and its host CPU count)\n");
        return false;
    }
    kprint("bench spinlock: %u vCPUs on %u host CPUs; spin count %u; %u rounds of %lu ms per case (median shown); "
           "critical section: 4 shared-line writes\n", vcpus, host_cpus, hv::recommended_spin_count(), kRounds,
           kCaseDurationNs / 1000000);
    kprint("  %7s  %6s  %-22s %12s  %22s  %7s  %10s %10s\n", "threads", "load", "lock", "acquires/s", "rounds: lowest..highest",
           "fairness", "min/thread", "max/thread");
    static Case run;
    uint64_t baseline[3] = {}, enlightened[3] = {};
    for (uint32_t level = 0; level < 3; ++level) {
        const uint32_t threads = host_cpus << level;  // 1x, 2x, 4x the host's CPUs
        if (threads > vcpus) {
            kprint("  (%u threads: more than the %u vCPUs; skipped)\n", threads, vcpus);
            continue;
        }
        constexpr uint32_t kAlgorithmCount = sizeof(kAlgorithms) / sizeof(kAlgorithms[0]);
        static Result rounds[kAlgorithmCount][kRounds];
        for (uint32_t round = 0; round < kRounds; ++round) {
            for (uint32_t a = 0; a < kAlgorithmCount; ++a) {
                run.algorithm = kAlgorithms[(a + round) % kAlgorithmCount];  // rotate the order too
                rounds[(a + round) % kAlgorithmCount][round] = measure(run, threads);
            }
        }
        for (uint32_t a = 0; a < kAlgorithmCount; ++a) {
            const Summary summary = summarize(rounds[a]);
            print_summary(threads, host_cpus, kAlgorithms[a], summary);
            if (kAlgorithms[a] == Algorithm::kTicket) baseline[level] = summary.median.per_second;
            if (kAlgorithms[a] == Algorithm::kPvKick) enlightened[level] = summary.median.per_second;
        }
    }
    kprint("median throughput, pv ticket (halt+kick) / naive ticket:");
    for (uint32_t level = 0; level < 3; ++level) {
        if (baseline[level] == 0) continue;
        const uint64_t ratio_milli = (enlightened[level] * 1000 + baseline[level] / 2) / baseline[level];
        kprint("  %ux: %lu.%03lu", 1u << level, ratio_milli / 1000, ratio_milli % 1000);
    }
    kprint("\n");
    return true;
}

}  // namespace hvkvm::guest::bench
