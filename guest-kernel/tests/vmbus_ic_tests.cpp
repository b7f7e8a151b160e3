// In-guest tests of the integration services (drivers/ic) against the root partition's VSPs:
// negotiated versions, heartbeats answered, the wall clock set and kept by time sync, the KVP
// pools, and log lines sent. The wall clock's step/slew rule is tested on a clock of its own.
#include "arch/x86_64/time.h"
#include "drivers/ic/ic.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/test/ktest.h"
#include "kernel/wall_clock.h"
#include "lib/string.h"

namespace hvkvm::guest {
namespace {

namespace wire = ::hvkvm::vmbus::services::ic;
using ic::ServiceState;

constexpr const char* kNoServices = "needs the root partition's integration services (vmbus.enabled)";
constexpr uint64_t kSecond = 1'000'000'000;
constexpr uint64_t kMs = 1'000'000;

uint64_t in(uint64_t ns) { return time::now_ns() + ns; }

// Waits until `done()` or the deadline; true if done.
template <typename Done>
bool wait_for(Done done, uint64_t deadline) {
    while (!done()) {
        if (time::now_ns() >= deadline) return false;
        sched::sleep_ns(kMs);
    }
    return true;
}

bool negotiated(ServiceState& state, wire::Version expected) {
    return state.is_negotiated() && state.versions().framework == wire::kFramework3 && state.versions().message == expected;
}

}  // namespace

KTEST(vmbus_ic, every_service_negotiates_the_highest_versions_both_sides_support) {
    KSKIP_UNLESS(ic::is_started(), kNoServices);
    KEXPECT(negotiated(ic::heartbeat_state(), {3, 0}));
    KEXPECT(negotiated(ic::shutdown_state(), {3, 0}));  // the host offers up to 3.2; this kernel stops at 3.0
    KEXPECT(negotiated(ic::timesync_state(), {4, 0}));
    KEXPECT(negotiated(ic::kvp_state(), {5, 0}));
    KEXPECT(negotiated(ic::guest_log_state(), {1, 0}));
    ServiceState* const states[] = {&ic::heartbeat_state(), &ic::shutdown_state(), &ic::timesync_state(), &ic::kvp_state(),
                                    &ic::guest_log_state()};
    for (ServiceState* state : states) {
        const ic::IcStats stats = state->stats();
        KEXPECT_EQ(stats.malformed, 0u);
        KEXPECT_EQ(stats.refused, 0u);
        KEXPECT_EQ(stats.send_failures, 0u);
    }
}

KTEST(vmbus_ic, the_host_sends_a_heartbeat_every_second_and_each_is_answered) {
    KSKIP_UNLESS(ic::is_started(), kNoServices);
    const uint64_t before = ic::heartbeat_state().stats().requests;
    KEXPECT(wait_for([&] { return ic::heartbeat_state().stats().requests >= before + 2; }, in(3 * kSecond)));
}

KTEST(vmbus_ic, the_wall_clock_is_set_by_the_host_and_runs_with_the_monotonic_clock) {
    KSKIP_UNLESS(ic::is_started(), kNoServices);
    KASSERT(wait_for([] { return time::kernel_wall_clock().is_set(); }, in(2 * kSecond)));
    const uint64_t first = time::wall_clock();
    KEXPECT(first > 1'577'836'800ull * kSecond);  // after 2020-01-01
    KEXPECT(ic::timesync_stats().syncs >= 1);
    const uint64_t mono = time::now_ns();
    sched::sleep_ns(20 * kMs);
    const uint64_t elapsed_wall = time::wall_clock() - first, elapsed_mono = time::now_ns() - mono;
    // Slewing changes the rate by at most 500 ppm; the two reads are a few microseconds apart.
    KEXPECT(elapsed_wall + 100'000 > elapsed_mono && elapsed_wall < elapsed_mono + 100'000);
}

KTEST(vmbus_ic, samples_every_5_s_keep_the_wall_clock_within_a_millisecond_of_the_host) {
    KSKIP_UNLESS(ic::is_started(), kNoServices);
    const uint64_t samples = ic::timesync_stats().samples;
    KASSERT(wait_for([&] { return ic::timesync_stats().samples > samples; }, in(7 * kSecond)));
    const time::WallClockStats stats = time::kernel_wall_clock().stats();
    kprint("    time sync: the last sample found the wall clock %ld ns off (%lu steps, %lu slews)\n", stats.last_error_ns,
           stats.steps, stats.slews);
    KEXPECT(stats.last_error_ns < 1'000'000 && stats.last_error_ns > -1'000'000);
    KEXPECT_EQ(ic::timesync_stats().stale, 0u);
}

KTEST(vmbus_ic, the_wall_clock_slews_errors_below_100_ms_and_steps_larger_ones) {
    time::WallClock clock;
    KEXPECT_EQ(clock.at(5), 0u);  // unset
    clock.set(1'000 * kSecond, 0);
    KEXPECT_EQ(clock.at(kSecond), 1'001 * kSecond);
    // 1 ms fast, corrected at t = 1 s: absorbed at 500 ppm, so over 2 s, never jumping back.
    KEXPECT(clock.correct(1'001 * kSecond - kMs, kSecond) == time::WallClock::Correction::kSlewing);
    uint64_t previous = clock.at(kSecond);
    for (uint64_t t = kSecond; t <= 4 * kSecond; t += 10 * kMs) {
        const uint64_t now = clock.at(t);
        KEXPECT(now >= previous);
        previous = now;
    }
    KEXPECT_EQ(clock.at(2 * kSecond), 1'002 * kSecond - 500'000);  // half absorbed after 1 s
    KEXPECT_EQ(clock.at(4 * kSecond), 1'004 * kSecond - kMs);      // all of it after 2 s
    // An error of exactly 100 ms is stepped; just under it is slewed.
    KEXPECT(clock.correct(1'005 * kSecond + 100 * kMs, 5 * kSecond) == time::WallClock::Correction::kStepped);
    KEXPECT_EQ(clock.at(5 * kSecond), 1'005 * kSecond + 100 * kMs);
    KEXPECT(clock.correct(1'006 * kSecond + 200 * kMs - 1, 6 * kSecond) == time::WallClock::Correction::kSlewing);
    KEXPECT(clock.correct(1'000 * kSecond, 7 * kSecond) == time::WallClock::Correction::kStepped);  // backwards
    KEXPECT_EQ(clock.stats().steps, 3u);
    KEXPECT_EQ(clock.stats().slews, 2u);
}

KTEST(vmbus_ic, kvp_pools_answer_the_kernel_auto_values_and_published_pairs) {
    char value[64];
    KASSERT(ic::kvp_get(wire::KvpPool::kAuto, "OSName", value, sizeof value));
    KEXPECT(strcmp(value, "hvkvm guest kernel") == 0);
    KASSERT(ic::kvp_get(wire::KvpPool::kAuto, "ProcessorCount", value, sizeof value));
    KEXPECT(strcmp(value, "0") != 0);
    KEXPECT(!ic::kvp_get(wire::KvpPool::kAuto, "NoSuchKey", value, sizeof value));
    KEXPECT(ic::kvp_publish("vmbus_ic.test", "published"));
    KASSERT(ic::kvp_get(wire::KvpPool::kGuest, "vmbus_ic.test", value, sizeof value));
    KEXPECT(strcmp(value, "published") == 0);
    KEXPECT(!ic::kvp_get(wire::KvpPool::kGuest, "vmbus_ic.test", value, 9));  // 10 bytes with its NUL
    // The wire's limits: 255 characters of key fit, 256 do not.
    char key[257];
    memset(key, 'k', sizeof key);
    key[255] = '\0';
    KEXPECT(ic::kvp_publish(key, "v"));
    key[255] = 'k';
    key[256] = '\0';
    KEXPECT(!ic::kvp_publish(key, "v"));
}

KTEST(vmbus_ic, host_pairs_from_the_config_reach_the_external_pool) {
    char value[64];
    KSKIP_UNLESS(ic::kvp_get(wire::KvpPool::kExternal, "IcTest", value, sizeof value),
                 "run with --set kvp.IcTest=from-config");
    KEXPECT(strcmp(value, "from-config") == 0);
}

KTEST(vmbus_ic, log_lines_are_sent_to_the_host) {
    KSKIP_UNLESS(ic::is_started() && ic::guest_log_state().is_negotiated(), kNoServices);
    const uint64_t sent = ic::guest_log_stats().sent;
    ic::guest_log_printf("vmbus_ic test line");
    KEXPECT(wait_for([&] { return ic::guest_log_stats().sent > sent; }, in(2 * kSecond)));
}

}  // namespace hvkvm::guest
