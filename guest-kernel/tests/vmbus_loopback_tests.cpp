// The guest's VMBus driver (drivers/vmbus) against a host inside the guest (vmbus_test_host.h):
// version negotiation and fallback, offers and the driver model, GPADLs at the header/body
// message boundaries and at the size limit, channels opened on each CPU, rescind and relid reuse,
// unload, ring wrap-around, full rings in both directions, and the interrupt policy (a busy
// channel takes no interrupt, an idle one sleeps until its interrupt).
#include <new>

#include "arch/x86_64/time.h"
#include "drivers/vmbus/bus.h"
#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/echo_vsc.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "lib/string.h"
#include "mm/page_allocator.h"
#include "tests/test_threads.h"
#include "tests/vmbus_test_host.h"
#include "tests/vmbus_test_support.h"
#include "vmbus/services/echo.h"

namespace hvkvm::guest {
namespace {

namespace protocol = ::hvkvm::vmbus::protocol;
using vmbus::BusError;
using vmbus::echo::EchoDevice;
using vmbus::echo::EchoResult;
namespace echo_service = ::hvkvm::vmbus::services::echo;

using test::echo_pattern;
using test::fill_pattern;
using test::in;
using test::kSecond;

// A bus connected to its own test host, with the echo VSC registered on it.
class LoopbackBus {
public:
    explicit LoopbackBus(const test::TestHostOptions& options = {}) : host_(options), bus_(host_) {}
    ~LoopbackBus() { stop(); }

    BusError start(const vmbus::BusOptions& options = {}) {
        const BusError error = bus_.start(options);
        if (error == BusError::kNone) bus_.drivers().register_driver(echo_driver_);
        return error;
    }
    void stop() {
        bus_.drivers().unregister_driver(echo_driver_);  // removes its devices
        bus_.stop();
    }

    test::TestHost& host() { return host_; }
    vmbus::Bus& bus() { return bus_; }
    EchoDevice* echo() { return vmbus::echo::first_device(bus_); }
    uint32_t echo_count() { return vmbus::echo::device_count(bus_); }

    // The driver model works in its own thread: wait until it has caught up with `count` devices.
    bool wait_for_echo_count(uint32_t count) {
        const uint64_t deadline = in(5 * kSecond);
        while (echo_count() != count) {
            if (time::now_ns() > deadline) return false;
            sched::sleep_ns(1'000'000);
        }
        return true;
    }

private:
    test::TestHost host_;
    vmbus::Bus bus_;
    vmbus::Driver echo_driver_{"echo (test bus)", echo_service::kInterfaceType, EchoDevice::probe, EchoDevice::remove, {},
                               false};
};

// Big enough for the stack of no test thread: on the heap.
LoopbackBus* make_bus(const test::TestHostOptions& options = {}) { return new (std::nothrow) LoopbackBus(options); }

struct BusHolder {
    LoopbackBus* bus;
    ~BusHolder() { delete bus; }
    LoopbackBus* operator->() { return bus; }
};

// The usual start: one echo offer, connected, its device probed. nullptr if any step failed.
LoopbackBus* started_echo_bus(const test::TestHostOptions& options = {}) {
    LoopbackBus* bus = make_bus(options);
    if (bus && bus->host().add_echo_offer(1) == 0 && bus->start() == BusError::kNone && bus->wait_for_echo_count(1))
        return bus;
    delete bus;
    return nullptr;
}

}  // namespace

KTEST(vmbus_loopback, connects_with_the_newest_version_and_probes_the_echo_device) {
    BusHolder f{make_bus()};
    KASSERT(f.bus);
    KASSERT(f->host().add_echo_offer(1) == 0);
    KASSERT(f->start() == BusError::kNone);
    KEXPECT_EQ(f->bus().version(), protocol::kVersionWin10_5_3);
    KEXPECT_EQ(f->host().versions_refused(), 0u);
    KEXPECT_EQ(f->bus().message_connection_id(), protocol::kMessageConnectionId);  // the server's choice
    KEXPECT_EQ(f->bus().drivers().device_count(), 1u);
    KASSERT(f->wait_for_echo_count(1));
    KEXPECT_EQ(echo_pattern(*f->echo(), 64, 1), EchoResult::kOk);
    KEXPECT_EQ(f->bus().stats().messages_refused, 0u);
    KEXPECT_EQ(f->host().server_counters().refused, 0u);
}

KTEST(vmbus_loopback, an_older_host_is_met_one_version_down_at_a_time) {
    {
        test::TestHostOptions options;
        options.max_version = protocol::kVersionWin10;  // 4.0: 5.3, 5.2, 5.1, 5.0 and 4.1 are refused
        BusHolder f{make_bus(options)};
        KASSERT(f.bus);
        KASSERT(f->start() == BusError::kNone);
        KEXPECT_EQ(f->bus().version(), protocol::kVersionWin10);
        KEXPECT_EQ(f->host().versions_refused(), 5u);
        KEXPECT_EQ(f->bus().message_connection_id(), protocol::kMessageConnectionId);  // before 5.0: always 1
    }
    {
        test::TestHostOptions options;
        options.max_version = protocol::kVersionWin8;  // the oldest the guest speaks: accepted
        BusHolder f{make_bus(options)};
        KASSERT(f.bus);
        KEXPECT(f->start() == BusError::kNone);
        KEXPECT_EQ(f->bus().version(), protocol::kVersionWin8);
        KEXPECT_EQ(f->host().versions_refused(), 7u);
    }
    {
        test::TestHostOptions options;
        options.max_version = protocol::kVersionWin8 - 1;  // one below: no common version
        BusHolder f{make_bus(options)};
        KASSERT(f.bus);
        KEXPECT(f->start() == BusError::kRefused);
        KEXPECT_EQ(f->host().versions_refused(), 8u);
        KEXPECT(!f->bus().is_running());
    }
}

KTEST(vmbus_loopback, without_vmbus_the_host_says_so_at_once) {
    test::TestHostOptions options;
    options.has_vmbus = false;
    BusHolder f{make_bus(options)};
    KASSERT(f.bus);
    const uint64_t start = time::now_ns();
    KEXPECT(f->start() == BusError::kNoHost);
    KEXPECT(time::now_ns() - start < kSecond / 10);  // no waiting for a reply that cannot come
    KEXPECT(!f->bus().is_running());
}

KTEST(vmbus_loopback, each_offer_becomes_a_device_and_only_matching_drivers_take_them) {
    BusHolder f{make_bus()};
    KASSERT(f.bus);
    KASSERT(f->host().add_echo_offer(1) == 0);
    KASSERT(f->host().add_foreign_offer(7));
    KASSERT(f->host().add_echo_offer(2) == 1);
    KASSERT(f->start() == BusError::kNone);
    KEXPECT_EQ(f->bus().drivers().device_count(), 3u);
    KASSERT(f->wait_for_echo_count(2));
    protocol::Guid instance = echo_service::kInstance;
    instance.data1 = 1;
    KEXPECT(f->bus().drivers().is_bound(instance));
    protocol::Guid foreign{};
    foreign.data1 = 7;
    KEXPECT(!f->bus().drivers().is_bound(foreign));
    // An offer made after the connection is probed as it comes.
    KASSERT(f->host().add_echo_offer(3) == 2);
    KASSERT(f->wait_for_echo_count(3));
    KEXPECT_EQ(f->bus().drivers().device_count(), 4u);
    for (int i = 0; i < 3; ++i) KEXPECT(f->host().vsp(i).is_open());
}

KTEST(vmbus_loopback, gpadls_span_header_and_body_messages_up_to_the_size_limit) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    vmbus::Device& device = f->echo()->device();
    constexpr uint32_t kPageCounts[] = {1, 26, 27, 54, 55, 4096, test::GpadlPages::kLargest};
    test::GpadlPages pages_for_gpadls;
    KASSERT(pages_for_gpadls.allocated());
    const uint64_t* pfns = pages_for_gpadls.pfns();
    const uint32_t gpadls_before = f->host().server_gpadl_count();
    for (uint32_t pages : kPageCounts) {
        const uint64_t posted_before = f->bus().stats().messages_posted;
        uint32_t gpadl = 0;
        KEXPECT(f->bus().create_gpadl(device, pfns, pages, gpadl) == BusError::kNone);
        KEXPECT_EQ(f->bus().stats().messages_posted - posted_before, uint64_t{test::gpadl_messages(pages)});
        uint32_t word_count = 0;
        const uint64_t* words = f->host().last_gpadl_words(word_count);  // what the host assembled
        KEXPECT_EQ(word_count, pages + 1);
        if (words && word_count == pages + 1) {
            KEXPECT_EQ(words[0], uint64_t{pages} * vmbus::kHvPageSize);  // byte_count, offset 0
            KEXPECT(memcmp(words + 1, pfns, pages * sizeof(uint64_t)) == 0);
        }
        KEXPECT_EQ(f->host().server_gpadl_count(), gpadls_before + 1);
        KEXPECT(f->bus().teardown_gpadl(device, gpadl) == BusError::kNone);
        KEXPECT_EQ(f->host().server_gpadl_count(), gpadls_before);
    }
    KEXPECT_EQ(test::gpadl_messages(26), 1u);
    KEXPECT_EQ(test::gpadl_messages(4096), 147u);
    // One past: more words than range_buflen can announce, refused before anything is sent.
    const uint64_t posted_before = f->bus().stats().messages_posted;
    uint32_t gpadl = 0;
    KEXPECT(f->bus().create_gpadl(device, pfns, test::GpadlPages::kLargest + 1, gpadl) == BusError::kBadArgument);
    KEXPECT_EQ(f->bus().stats().messages_posted, posted_before);
    KEXPECT(f->bus().teardown_gpadl(device, 0x12345) == BusError::kBadRequest);  // never created
    KEXPECT_EQ(f->host().server_counters().refused, 0u);
}

KTEST(vmbus_loopback, a_channel_opens_on_each_cpu_and_closes_cleanly) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    EchoDevice& echo = *f->echo();
    for (uint32_t i = 0; i < smp::online_count(); ++i) {
        vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
        options.target_cpu = test::nth_online_cpu(i);
        options.send_ring_pages = 2 + i;  // a different ring layout each time
        KASSERT(echo.reopen(options) == BusError::kNone);
        KEXPECT_EQ(f->host().vsp(0).target_vp(), options.target_cpu);
        KEXPECT_EQ(echo.channel()->target_cpu(), options.target_cpu);
        for (uint32_t k = 0; k < 20; ++k) KEXPECT_EQ(echo_pattern(echo, 100 + k, k), EchoResult::kOk);
        KEXPECT_EQ(f->host().server_gpadl_count(), 1u);  // the old ring GPADL was torn down
    }
    KEXPECT(f->host().server_is_open(0));
    f->stop();  // the driver closes its channel (CLOSECHANNEL, GPADL teardown), then UNLOAD
    KEXPECT(!f->host().server_is_open(0));
    KEXPECT_EQ(f->host().server_gpadl_count(), 0u);
    KEXPECT_EQ(f->echo_count(), 0u);
    KEXPECT_EQ(f->host().server_counters().refused, 0u);
}

KTEST(vmbus_loopback, ring_sizes_are_checked_before_anything_is_sent) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    EchoDevice& echo = *f->echo();
    vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
    options.send_ring_pages = 1u << mm::kMaxOrder;  // the largest ring: 4 MiB
    KEXPECT_EQ(echo.reopen(options), BusError::kNone);
    KEXPECT_EQ(echo_pattern(echo, 4096, 1), EchoResult::kOk);
    const uint64_t posted = f->bus().stats().messages_posted;
    options.send_ring_pages = (1u << mm::kMaxOrder) + 1;  // one page more
    KEXPECT_EQ(echo.reopen(options), BusError::kBadArgument);
    options = vmbus::echo::default_channel_options();
    options.receive_ring_pages = 0;
    KEXPECT_EQ(echo.reopen(options), BusError::kBadArgument);
    // The refused opens sent nothing but the old channel's close and teardown.
    KEXPECT_EQ(f->bus().stats().messages_posted - posted, 2u);
    KEXPECT_EQ(f->host().server_gpadl_count(), 0u);
}

KTEST(vmbus_loopback, unload_then_connect_again_offers_everything_anew) {
    BusHolder f{make_bus()};
    KASSERT(f.bus);
    KASSERT(f->host().add_echo_offer(1) == 0);
    for (int round = 0; round < 3; ++round) {
        KASSERT(f->start() == BusError::kNone);
        KASSERT(f->wait_for_echo_count(1));
        KEXPECT_EQ(echo_pattern(*f->echo(), 256, static_cast<uint32_t>(round)), EchoResult::kOk);
        f->stop();
        KEXPECT(!f->bus().is_running());
        KEXPECT_EQ(f->host().server_gpadl_count(), 0u);
    }
}

KTEST(vmbus_loopback, rescind_removes_the_device_and_its_relid_is_reused) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    const uint32_t relid = f->host().relid_of(0);
    KEXPECT(relid != 0);
    KASSERT(f->host().rescind(0));
    KASSERT(f->wait_for_echo_count(0));  // the removal has begun ...
    f->bus().drivers().settle();          // ... and ended: channel closed, GPADL torn down, relid released
    KEXPECT_EQ(f->bus().drivers().device_count(), 0u);
    KEXPECT_EQ(f->host().server_gpadl_count(), 0u);
    // RELID_RELEASED reached the host: the next offer gets the same relid.
    KASSERT(f->host().add_echo_offer(2) == 1);
    KASSERT(f->wait_for_echo_count(1));
    KEXPECT_EQ(f->host().relid_of(1), relid);
    KEXPECT_EQ(echo_pattern(*f->echo(), 512, 9), EchoResult::kOk);
    KEXPECT_EQ(f->bus().stats().messages_refused, 0u);
    KEXPECT_EQ(f->host().server_counters().refused, 0u);
}

namespace {

struct PendingRoundTrip {
    EchoDevice* echo;
    EchoResult result;
    uint64_t took_ns;
};

void round_trip_in_thread(void* context, uint32_t) {
    auto& call = *static_cast<PendingRoundTrip*>(context);
    const uint64_t start = time::now_ns();
    call.result = echo_pattern(*call.echo, 64, 3);
    call.took_ns = time::now_ns() - start;
}

struct DelayedRescind {
    test::TestHost* host;
    uint64_t delay_ns;
};

}  // namespace

KTEST(vmbus_loopback, a_rescind_ends_a_request_waiting_for_its_completion) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    f->host().vsp(0).set_paused(true);  // the request will not be answered
    PendingRoundTrip call{f->echo(), EchoResult::kOk, 0};
    static DelayedRescind rescind;
    rescind = {&f->host(), 50'000'000};
    // One thread waits for its completion, the other rescinds the device meanwhile.
    auto body = [](void* context, uint32_t index) {
        if (index == 0) {
            round_trip_in_thread(context, index);
        } else {
            sched::sleep_ns(rescind.delay_ns);
            rescind.host->rescind(0);
        }
    };
    KASSERT(test::run_in_threads(2, test::Placement::kFree, body, &call));
    KEXPECT(call.result == EchoResult::kClosed);
    KEXPECT(call.took_ns < 4 * kSecond);  // ended by the rescind, not by its 5 s deadline
    KASSERT(f->wait_for_echo_count(0));
}

KTEST(vmbus_loopback, packets_wrap_around_small_rings_intact) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    EchoDevice& echo = *f->echo();
    vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
    options.send_ring_pages = 1;  // 4 KiB each way
    options.receive_ring_pages = 1;
    KASSERT(echo.reopen(options) == BusError::kNone);
    const uint32_t largest = echo.channel()->max_inband_payload();
    KEXPECT_EQ(largest, 4096u - 8 - 16 - 8);  // one unit stays free, descriptor and trailer
    uint64_t bytes = 0;
    KEXPECT_EQ(test::wrap_around_round_trips(echo, bytes), 0u);
    KEXPECT(bytes > 300 * 4096);  // both rings wrapped hundreds of times
    KEXPECT_EQ(echo_pattern(echo, largest, 1), EchoResult::kOk);  // the largest packet fits exactly
    static uint8_t one_more[4096];
    KEXPECT(echo.send_request(1, one_more, largest + 8, 0) == EchoResult::kSendFailed);  // one unit more never does
    KEXPECT_EQ(echo.unexpected(), 0u);
}

namespace {

struct DelayedResume {
    test::LoopbackVsp* vsp;
    uint64_t delay_ns;
};

void resume_later(void* context) {
    auto& resume = *static_cast<DelayedResume*>(context);
    sched::sleep_ns(resume.delay_ns);
    resume.vsp->set_paused(false);
}

}  // namespace

KTEST(vmbus_loopback, a_full_ring_waits_for_the_pending_send_size_signal) {
    BusHolder f{started_echo_bus()};
    KASSERT(f.bus);
    EchoDevice& echo = *f->echo();
    vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
    options.send_ring_pages = 1;
    options.receive_ring_pages = 4;  // room for every completion
    KASSERT(echo.reopen(options) == BusError::kNone);
    test::LoopbackVsp& vsp = f->host().vsp(0);
    static uint8_t payload[200];
    fill_pattern(payload, sizeof payload, 5);

    // Guest -> host full: the host consumes nothing, so the ring fills and write() declares the
    // room it needs.
    vsp.set_paused(true);
    uint32_t sent = 0;
    while (echo.send_request(sent + 1, payload, sizeof payload, 0) == EchoResult::kOk) ++sent;
    KEXPECT(sent >= 10);
    KEXPECT(vsp.upstream_pending_send_size() > sizeof payload);
    const vmbus::ChannelStats before = echo.channel()->stats();
    static DelayedResume resume;
    resume = {&vsp, 30'000'000};
    sched::Thread* resumer = sched::create_thread(resume_later, &resume);
    KASSERT(resumer);
    const uint64_t start = time::now_ns();
    KEXPECT(echo.send_request(sent + 1, payload, sizeof payload, in(5 * kSecond)) == EchoResult::kOk);
    KEXPECT(time::now_ns() - start >= 20'000'000);  // it waited for the host
    sched::join(resumer);
    ++sent;
    const vmbus::ChannelStats after = echo.channel()->stats();
    KEXPECT(after.send_full_waits > before.send_full_waits);  // once, or again after an early interrupt
    KEXPECT(after.interrupts > before.interrupts);  // the host's release crossed pending_send_size
    uint32_t collected = 0;
    for (; collected < sent; ++collected) {
        uint64_t id;
        uint32_t size;
        static uint8_t reply[256];
        if (echo.collect(id, reply, sizeof reply, size, in(5 * kSecond)) != EchoResult::kOk) break;
        KEXPECT_EQ(id, uint64_t{collected} + 1);  // in order
        KEXPECT(size == sizeof payload && memcmp(reply, payload, size) == 0);  // 200: whole units
    }
    KEXPECT_EQ(collected, sent);

    // Host -> guest full: requests keep coming while the guest collects nothing, until the
    // host's completion finds no room; the guest's release then signals it.
    vmbus::ChannelOptions small_receive = vmbus::echo::default_channel_options();
    small_receive.receive_ring_pages = 1;
    KASSERT(echo.reopen(small_receive) == BusError::kNone);
    const test::VspStats vsp_before = vsp.stats();
    const uint64_t signals_before = echo.channel()->stats().host_signals;
    constexpr uint32_t kRequests = 40;  // 40 x 232 bytes of completions: more than 4 KiB
    for (uint32_t i = 0; i < kRequests; ++i)
        KEXPECT(echo.send_request(i + 1, payload, sizeof payload, in(kSecond)) == EchoResult::kOk);
    const uint64_t deadline = in(5 * kSecond);
    while (vsp.stats().full_waits == vsp_before.full_waits && time::now_ns() < deadline) sched::sleep_ns(1'000'000);
    KEXPECT(vsp.stats().full_waits > vsp_before.full_waits);
    for (collected = 0; collected < kRequests; ++collected) {
        uint64_t id;
        uint32_t size;
        static uint8_t reply[256];
        if (echo.collect(id, reply, sizeof reply, size, in(5 * kSecond)) != EchoResult::kOk) break;
        KEXPECT_EQ(id, uint64_t{collected} + 1);
    }
    KEXPECT_EQ(collected, kRequests);
    KEXPECT(echo.channel()->stats().host_signals > signals_before);  // a release crossed the host's pending size
}

KTEST(vmbus_loopback, a_busy_channel_polls_without_interrupts_and_an_idle_one_sleeps) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs (the host's VSP polls on its own)");
    // Polls long enough to ride out a vCPU that the (shared, overcommitted) host deschedules.
    constexpr uint64_t kPollNs = 20'000'000;
    test::TestHostOptions host_options;
    host_options.vsp_cpu = test::last_online_cpu();
    host_options.vsp_poll_ns = kPollNs;
    BusHolder f{started_echo_bus(host_options)};
    KASSERT(f.bus);
    EchoDevice& echo = *f->echo();
    vmbus::ChannelOptions options = vmbus::echo::default_channel_options();
    options.target_cpu = test::nth_online_cpu(0);
    options.poll_ns = kPollNs;  // busy: poll while the request is in flight
    KASSERT(echo.reopen(options) == BusError::kNone);

    // Busy: queue depth 1, back to back, from a thread on another CPU than the VSP.
    test::RoundTripRun busy{&echo, 2'000, 0, {}, {}};
    KASSERT(test::run_in_threads(1, test::Placement::kOnePerCpu, test::run_round_trips, &busy));
    KEXPECT_EQ(busy.failures, 0u);
    const uint64_t busy_interrupts = busy.after.interrupts - busy.before.interrupts;
    const uint64_t busy_signals = busy.after.host_signals - busy.before.host_signals;
    const uint64_t busy_slept = busy.after.waits_slept - busy.before.waits_slept;
    const uint64_t busy_races = busy.after.arm_races - busy.before.arm_races;
    kprint("    busy: %u round trips, %lu interrupts, %lu signals to the host, %lu waits polled, %lu slept\n",
           busy.messages, busy_interrupts, busy_signals, busy.after.waits_polled - busy.before.waits_polled, busy_slept);
    // The mechanism: while the guest polls, its ring is masked and the host never interrupts; an
    // interrupt only ever answers a wait that re-enabled it.
    KEXPECT(busy_interrupts <= busy_slept + busy_races);
    // The rate: at most 1 in 100 (a poll outlasted by a descheduled vCPU); the target is 0.
    KEXPECT(busy_interrupts * 100 <= busy.messages);
    KEXPECT(busy_signals * 100 <= busy.messages);

    // Idle: every completion finds the reader asleep, interrupt enabled: one interrupt each.
    test::ArmedExchange exchange;
    KEXPECT_EQ(test::idle_round_trips(*echo.channel(), 100, exchange), 100u);
    KEXPECT_EQ(exchange.failures, 0u);
}

}  // namespace hvkvm::guest
