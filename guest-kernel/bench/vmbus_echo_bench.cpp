#include "bench/vmbus_echo_bench.h"

#include "arch/x86_64/time.h"
#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/echo_vsc.h"
#include "drivers/vmbus/vmbus.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "lib/string.h"
#include "vmbus/services/echo.h"

namespace hvkvm::guest::bench {
namespace {

using vmbus::echo::EchoDevice;
using vmbus::echo::EchoResult;

// Rounds of every case, interleaved so that slow drifts of the shared host hit all cases alike.
constexpr uint32_t kRounds = 5;
constexpr uint64_t kThroughputRoundNs = 200'000'000;
constexpr uint32_t kBusySamplesPerRound = 1000;
constexpr uint32_t kIdleSamplesPerRound = 100;
constexpr uint64_t kIdlePauseNs = 1'000'000;      // the guest and the root's VSP both go to sleep
constexpr uint64_t kBusyPollNs = 1'000'000;       // while its request is in flight, the reader polls
constexpr uint32_t kRingPages = 64;               // 256 KiB each way
constexpr uint64_t kReplyLimitNs = 5'000'000'000;
constexpr uint32_t kMaxPayload = ::hvkvm::vmbus::services::echo::kMaxPayload;

enum class Kind { kThroughput, kLatencyBusy, kLatencyIdle };

struct Case {
    const char* name;
    Kind kind;
    uint32_t payload;
    uint32_t window;  // requests in flight (throughput cases)
};

constexpr Case kCases[] = {
    {"busy-64", Kind::kThroughput, 64, 256},
    {"busy-4k", Kind::kThroughput, 4096, 32},
    {"qd1-busy", Kind::kLatencyBusy, 64, 1},
    {"qd1-idle", Kind::kLatencyIdle, 64, 1},
};
constexpr uint32_t kCaseCount = sizeof(kCases) / sizeof(kCases[0]);
constexpr uint32_t kMaxSamples = kRounds * kBusySamplesPerRound;

// What one round measured, and what the guest counted meanwhile.
struct Round {
    uint64_t messages = 0;
    uint64_t elapsed_ns = 0;
    uint64_t signals = 0;     // HvSignalEvent calls
    uint64_t interrupts = 0;  // channel interrupts
    uint64_t p50_ns = 0;      // latency cases
    bool ok = true;
};

struct CaseResults {
    Round rounds[kRounds];
    uint64_t samples[kMaxSamples];  // latency cases: every round trip, all rounds
    uint32_t sample_count = 0;
};

// The benchmark's state: the echo device and payload, and one result set per case.
struct Benchmark {
    EchoDevice* echo = nullptr;
    uint8_t payload[kMaxPayload];
    uint8_t reply[kMaxPayload];
    CaseResults results[kCaseCount];
    StringView only;
    bool ok = true;
};

// Over all rounds of a case: messages, and what the guest counted meanwhile.
struct Totals {
    uint64_t messages = 0, signals = 0, interrupts = 0;
};

Totals totals(const Round* rounds) {
    Totals sum;
    for (uint32_t r = 0; r < kRounds; ++r) {
        sum.messages += rounds[r].messages;
        sum.signals += rounds[r].signals;
        sum.interrupts += rounds[r].interrupts;
    }
    return sum;
}

void sort(uint64_t* values, uint32_t count) {  // Shell sort: a few thousand values, no allocation
    for (uint32_t gap = count / 2; gap > 0; gap /= 2)
        for (uint32_t i = gap; i < count; ++i)
            for (uint32_t j = i; j >= gap && values[j - gap] > values[j]; j -= gap) {
                const uint64_t value = values[j];
                values[j] = values[j - gap];
                values[j - gap] = value;
            }
}

uint64_t percentile(const uint64_t* sorted, uint32_t count, uint32_t percent) {
    if (count == 0) return 0;
    const uint32_t index = static_cast<uint32_t>((uint64_t{count} * percent + 99) / 100);
    return sorted[index == 0 ? 0 : index - 1];
}

void start_counting(const vmbus::Channel& channel, Round& round) {
    const vmbus::ChannelStats stats = channel.stats();
    round.signals = stats.host_signals;
    round.interrupts = stats.interrupts;
}

void stop_counting(const vmbus::Channel& channel, Round& round) {
    const vmbus::ChannelStats stats = channel.stats();
    round.signals = stats.host_signals - round.signals;
    round.interrupts = stats.interrupts - round.interrupts;
}

// Keeps up to `window` requests in flight for the round's duration, then collects the rest.
Round throughput_round(Benchmark& bench, const Case& test) {
    Round round;
    EchoDevice& echo = *bench.echo;
    start_counting(*echo.channel(), round);
    const uint64_t start = time::now_ns();
    const uint64_t stop = start + kThroughputRoundNs;
    uint64_t sent = 0, done = 0;
    for (;;) {
        // Top the window up in batches (one publish each), then take every completion there is.
        while (time::now_ns() < stop && sent - done < test.window) {
            const uint32_t room = static_cast<uint32_t>(test.window - (sent - done));
            const uint32_t batch = echo.send_requests(sent + 1, room, bench.payload, test.payload);
            if (batch == 0) break;
            sent += batch;
        }
        if (done == sent) break;
        uint32_t collected = 0;
        if (echo.collect_available(test.payload, collected, time::now_ns() + kReplyLimitNs) != EchoResult::kOk) {
            round.ok = false;
            break;
        }
        done += collected;
    }
    round.elapsed_ns = time::now_ns() - start;
    round.messages = done;
    stop_counting(*echo.channel(), round);
    return round;
}

Round latency_round(Benchmark& bench, const Case& test, CaseResults& results) {
    Round round;
    EchoDevice& echo = *bench.echo;
    const bool idle = test.kind == Kind::kLatencyIdle;
    echo.channel()->set_poll_ns(idle ? 0 : kBusyPollNs);
    const uint32_t samples = idle ? kIdleSamplesPerRound : kBusySamplesPerRound;
    const uint32_t first = results.sample_count;
    start_counting(*echo.channel(), round);
    for (uint32_t i = 0; i < samples && results.sample_count < kMaxSamples; ++i) {
        if (idle) sched::sleep_ns(kIdlePauseNs);
        const uint64_t start = time::now_ns();
        if (echo.round_trip(bench.payload, test.payload, start + kReplyLimitNs) != EchoResult::kOk) {
            round.ok = false;
            break;
        }
        const uint64_t took = time::now_ns() - start;
        results.samples[results.sample_count++] = took;
        round.elapsed_ns += took;
        ++round.messages;
    }
    stop_counting(*echo.channel(), round);
    // This round's median, for the spread between rounds.
    static uint64_t round_samples[kBusySamplesPerRound];
    const uint32_t count = results.sample_count - first;
    memcpy(round_samples, results.samples + first, count * sizeof(uint64_t));
    sort(round_samples, count);
    round.p50_ns = percentile(round_samples, count, 50);
    return round;
}

bool selected(const Benchmark& bench, const Case& test) { return bench.only.empty() || bench.only == test.name; }

// "0.123": a per-message ratio with three decimals, in integers (the guest has no FPU code).
void print_ratio(uint64_t count, uint64_t messages) {
    const uint64_t thousandths = messages ? count * 1000 / messages : 0;
    kprint("%lu.%03lu", thousandths / 1000, thousandths % 1000);
}

// The median round by `key` (rounds sorted by it), and the range.
template <typename Key>
void median_and_range(const Round* rounds, Key key, uint64_t& median, uint64_t& low, uint64_t& high) {
    uint64_t values[kRounds];
    for (uint32_t i = 0; i < kRounds; ++i) values[i] = key(rounds[i]);
    sort(values, kRounds);
    median = values[kRounds / 2];
    low = values[0];
    high = values[kRounds - 1];
}

void report(Benchmark& bench) {
    // The last column (messages over all rounds) lets a script turn the VM's KVM exit count into
    // exits per message (tests/bench/vmbus_echo.sh).
    kprint("%-9s %7s %6s %28s %12s %15s %9s\n", "case", "payload", "window", "messages/s median [min - max]",
           "signals/msg", "interrupts/msg", "messages");
    for (uint32_t c = 0; c < kCaseCount; ++c) {
        const Case& test = kCases[c];
        if (test.kind != Kind::kThroughput || !selected(bench, test)) continue;
        const Round* rounds = bench.results[c].rounds;
        uint64_t median, low, high;
        median_and_range(rounds, [](const Round& r) { return r.elapsed_ns ? r.messages * 1'000'000'000 / r.elapsed_ns : 0; },
                         median, low, high);
        const Totals sum = totals(rounds);
        kprint("%-9s %5u B %6u %10lu [%lu - %lu] ", test.name, test.payload, test.window, median, low, high);
        print_ratio(sum.signals, sum.messages);
        kprint("  ");
        print_ratio(sum.interrupts, sum.messages);
        kprint("  %lu\n", sum.messages);
    }
    kprint("%-9s %7s %8s %8s %22s %12s %15s %9s\n", "case", "payload", "p50 us", "p99 us", "p50 of rounds [min-max]",
           "signals/msg", "interrupts/msg", "messages");
    for (uint32_t c = 0; c < kCaseCount; ++c) {
        const Case& test = kCases[c];
        if (test.kind == Kind::kThroughput || !selected(bench, test)) continue;
        CaseResults& results = bench.results[c];
        sort(results.samples, results.sample_count);
        uint64_t median, low, high;
        median_and_range(results.rounds, [](const Round& r) { return r.p50_ns; }, median, low, high);
        const Totals sum = totals(results.rounds);
        kprint("%-9s %5u B %8lu %8lu %13lu [%lu - %lu] ", test.name, test.payload,
               percentile(results.samples, results.sample_count, 50) / 1000,
               percentile(results.samples, results.sample_count, 99) / 1000, median / 1000, low / 1000, high / 1000);
        print_ratio(sum.signals, sum.messages);
        kprint("  ");
        print_ratio(sum.interrupts, sum.messages);
        kprint("  %lu\n", sum.messages);
    }
}

void run(void* context) {
    Benchmark& bench = *static_cast<Benchmark*>(context);
    for (uint32_t i = 0; i < sizeof bench.payload; ++i) bench.payload[i] = static_cast<uint8_t>(i * 13 + 7);
    for (uint32_t r = 0; r < kRounds; ++r) {
        for (uint32_t c = 0; c < kCaseCount; ++c) {
            const Case& test = kCases[c];
            if (!selected(bench, test)) continue;
            Round& round = bench.results[c].rounds[r];
            if (test.kind == Kind::kThroughput) {
                bench.echo->channel()->set_poll_ns(kBusyPollNs);
                round = throughput_round(bench, test);
            } else {
                round = latency_round(bench, test, bench.results[c]);
            }
            if (!round.ok) {
                kprint("bench vmbus_echo: %s: an echo failed or timed out\n", test.name);
                bench.ok = false;
                return;
            }
        }
    }
}

}  // namespace

bool run_vmbus_echo_benchmark(StringView only) {
    vmbus::Bus* bus = vmbus::bus();
    EchoDevice* echo = bus ? vmbus::echo::first_device(*bus) : nullptr;
    if (!echo) {
        kprint("bench vmbus_echo: no echo device (needs the root partition: vmbus.enabled)\n");
        return false;
    }
    static Benchmark bench;
    bench.echo = echo;
    bench.only = only;
    bool known = only.empty();
    for (const Case& test : kCases) known |= only == test.name;
    if (!known) {
        kprint("bench vmbus_echo: unknown case \"%.*s\" (known: busy-64, busy-4k, qd1-busy, qd1-idle)\n",
               static_cast<int>(only.size()), only.data());
        return false;
    }
    // The benchmark thread and the channel's interrupts on one CPU: CPU 0.
    vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
    options.send_ring_pages = kRingPages;
    options.receive_ring_pages = kRingPages;
    options.target_cpu = 0;
    if (echo->reopen(options) != vmbus::BusError::kNone) {
        kprint("bench vmbus_echo: cannot reopen the echo channel with %u-page rings\n", kRingPages);
        return false;
    }
    kprint("bench vmbus_echo: echo channel to the root partition, %u vCPU(s), rings %u KiB each way, %u rounds "
           "interleaved\n",
           smp::online_count(), kRingPages * 4, kRounds);
    sched::ThreadOptions thread_options;
    thread_options.name = "bench-vmbus";
    thread_options.ideal_cpu = 0;
    thread_options.affinity = 1;
    sched::Thread* thread = sched::create_thread(run, &bench, thread_options);
    if (!thread) return false;
    sched::join(thread);
    if (bench.ok) report(bench);
    echo->reopen(vmbus::echo::default_channel_options());
    return bench.ok;
}

}  // namespace hvkvm::guest::bench
