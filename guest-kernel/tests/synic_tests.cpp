// The guest's SynIC driver against the VMM's SynIC, through the synic-echo test device
// (hvkvm/abi/synic.h EchoRequest, config debug.synic_echo): messages reach the slot of the VP they
// name, queued messages follow one another through EOM in order, a post beyond the host's queue
// is refused with the status the guest sees, and event flags reach each VP with one interrupt per
// flag that was clear.
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/time.h"
#include "drivers/synic/synic.h"
#include "hv/hypervisor.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "lib/string.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

using namespace abi::synic;
using abi::hv::Status;

constexpr const char* kNoEcho = "needs the VMM's synic-echo device (--set debug.synic_echo=true)";
constexpr uint32_t kTestSint = 5;  // not VMBus's SINT 2
constexpr uint64_t kArrivalLimitNs = 2'000'000'000;
constexpr uint64_t kSettleNs = 20'000'000;  // longer than any delivery still in flight
// Messages the VMM queues per (VP, SINT) while the slot is busy (vmm/synic Synic::kQueueLimit):
// with the slot full, one more post is refused.
constexpr uint32_t kHostQueueLimit = 64;

// What the test SINT received, recorded by its handler (interrupt context, any CPU).
struct Arrival {
    uint32_t cpu;
    uint32_t type;
    uint32_t size;
    uint32_t index;   // message: data[0], the repeat index; event: the flag
    bool intact;      // message: the rest of the data is the pattern the test sent
};

constexpr uint32_t kMaxArrivals = 1024;

struct Recorder {
    uint32_t count;
    uint32_t overflow;
    uint8_t pattern;
    Arrival arrivals[kMaxArrivals];
} recorder;

void record(const Arrival& arrival) {
    const uint32_t slot = __atomic_fetch_add(&recorder.count, 1, __ATOMIC_RELAXED);
    if (slot >= kMaxArrivals) {
        __atomic_fetch_add(&recorder.overflow, 1, __ATOMIC_RELAXED);
        return;
    }
    recorder.arrivals[slot] = arrival;
}

void on_test_message(void*, const Message& message) {
    EchoRequest echo;
    memcpy(&echo, message.payload, sizeof echo);
    bool intact = message.header.payload_size == sizeof echo;
    for (uint32_t i = 1; i < sizeof echo.data; ++i) intact &= echo.data[i] == static_cast<uint8_t>(recorder.pattern + i);
    record({this_cpu().index, message.header.message_type, message.header.payload_size, echo.data[0], intact});
}

void on_test_event(void*, uint32_t flag) { record({this_cpu().index, 0, 0, flag, true}); }

uint32_t arrivals() { return __atomic_load_n(&recorder.count, __ATOMIC_ACQUIRE); }

// The test SINT attached for one test, with a fresh recorder.
class TestSint {
public:
    explicit TestSint(uint8_t pattern) {
        recorder.count = recorder.overflow = 0;
        recorder.pattern = pattern;
        synic::SintHandler handler;
        handler.on_message = on_test_message;
        handler.on_event = on_test_event;
        attached_ = synic::attach(kTestSint, handler);
    }
    ~TestSint() {
        if (attached_) synic::detach(kTestSint);
    }
    bool attached() const { return attached_; }

private:
    bool attached_;
};

EchoRequest message_request(uint32_t vp, uint32_t repeat) {
    EchoRequest request{};
    request.kind = EchoKind::kMessage;
    request.target_vp = vp;
    request.sint = kTestSint;
    request.repeat = repeat;
    for (uint32_t i = 1; i < sizeof request.data; ++i) request.data[i] = static_cast<uint8_t>(recorder.pattern + i);
    return request;
}

EchoRequest flag_request(uint32_t vp, uint32_t flag) {
    EchoRequest request{};
    request.kind = EchoKind::kEventFlag;
    request.target_vp = vp;
    request.sint = kTestSint;
    request.flag = flag;
    return request;
}

Status post(const EchoRequest& request) {
    return hv::post_message(kEchoConnectionId, kEchoMessageType, &request, sizeof request);
}

// The device refuses a request of no kind; without the device the connection does not exist.
bool echo_present() {
    EchoRequest probe{};
    return post(probe) == Status::kInvalidParameter;
}

// Posts from `cpu` itself. The device answers inside the hypercall, so a VP posting to itself
// cannot drain its slot meanwhile: every message after the first is queued behind it, and the
// counts are exact.
struct PostOnCpu {
    EchoRequest request;
    Status status;
};

void post_here(void* argument) {
    auto& call = *static_cast<PostOnCpu*>(argument);
    call.status = post(call.request);
}

Status post_from(uint32_t cpu, const EchoRequest& request) {
    PostOnCpu call{request, Status::kSuccess};
    smp::run_on_cpu(cpu, post_here, &call);
    return call.status;
}

bool wait_for_arrivals(uint32_t count) {
    const uint64_t deadline = time::now_ns() + kArrivalLimitNs;
    while (arrivals() < count) {
        if (time::now_ns() > deadline) return false;
        sched::sleep_ns(100'000);
    }
    return true;
}

bool slot_is_free(uint32_t cpu) {
    return __atomic_load_n(&synic::message_slot(cpu, kTestSint)->header.message_type, __ATOMIC_ACQUIRE) ==
           kMessageTypeNone;
}

}  // namespace

KTEST(vmbus_synic, driver_is_up_on_every_cpu) {
    KASSERT(hv::synic_available());
    KASSERT(synic::available());
    KEXPECT(synic::vector() >= 0x30);
    for (uint32_t i = 0; i < smp::online_count(); ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        KEXPECT(synic::message_slot(cpu, kTestSint) != nullptr);
        KEXPECT(synic::event_flag_words(cpu, kTestSint) != nullptr);
    }
    KEXPECT(!synic::attach(kSintCount, synic::SintHandler{}));  // no SINT 16
}

KTEST(vmbus_synic, message_reaches_each_vp) {
    KSKIP_UNLESS(synic::available() && echo_present(), kNoEcho);
    TestSint sint(0x40);
    KASSERT(sint.attached());
    KEXPECT(!synic::attach(kTestSint, synic::SintHandler{}));  // taken
    const uint32_t cpus = smp::online_count();
    for (uint32_t i = 0; i < cpus; ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        KASSERT(post(message_request(cpu, 1)) == Status::kSuccess);
        KASSERT(wait_for_arrivals(i + 1));
        const Arrival& arrival = recorder.arrivals[i];
        KEXPECT_EQ(arrival.cpu, cpu);
        KEXPECT_EQ(arrival.type, kEchoMessageType);
        KEXPECT_EQ(arrival.size, sizeof(EchoRequest));
        KEXPECT_EQ(arrival.index, 0u);
        KEXPECT(arrival.intact);
        KEXPECT(slot_is_free(cpu));
    }
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(arrivals(), cpus);  // exactly one each
    KEXPECT(synic::stats(test::nth_online_cpu(0), kTestSint).messages >= 1);
}

KTEST(vmbus_synic, queued_messages_arrive_in_order_through_eom) {
    KSKIP_UNLESS(synic::available() && echo_present(), kNoEcho);
    constexpr uint32_t kRepeat = 20;
    TestSint sint(0x55);
    KASSERT(sint.attached());
    const uint32_t cpus = smp::online_count();
    for (uint32_t i = 0; i < cpus; ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        const uint64_t eoms_before = synic::stats(cpu, kTestSint).end_of_messages;
        const uint32_t first = arrivals();
        KASSERT(post_from(cpu, message_request(cpu, kRepeat)) == Status::kSuccess);
        KASSERT(wait_for_arrivals(first + kRepeat));
        for (uint32_t k = 0; k < kRepeat; ++k) {
            const Arrival& arrival = recorder.arrivals[first + k];
            KEXPECT_EQ(arrival.cpu, cpu);
            KEXPECT_EQ(arrival.index, k);  // in order
            KEXPECT(arrival.intact);
        }
        // The first filled the slot; each later one was queued, flagged pending, and delivered
        // after one EOM.
        KEXPECT_EQ(synic::stats(cpu, kTestSint).end_of_messages - eoms_before, uint64_t{kRepeat - 1});
        KEXPECT(slot_is_free(cpu));
    }
    // From another CPU the target drains while the host still posts: fewer EOMs, same order.
    if (cpus >= 2) {
        const uint32_t target = test::last_online_cpu();
        const uint32_t poster = test::nth_online_cpu(0);
        const uint32_t first = arrivals();
        KASSERT(post_from(poster, message_request(target, kRepeat)) == Status::kSuccess);
        KASSERT(wait_for_arrivals(first + kRepeat));
        for (uint32_t k = 0; k < kRepeat; ++k) KEXPECT_EQ(recorder.arrivals[first + k].index, k);
    }
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(__atomic_load_n(&recorder.overflow, __ATOMIC_RELAXED), 0u);
}

KTEST(vmbus_synic, a_post_beyond_the_host_queue_is_refused) {
    KSKIP_UNLESS(synic::available() && echo_present(), kNoEcho);
    TestSint sint(0x66);
    KASSERT(sint.attached());
    const uint32_t cpu = test::last_online_cpu();
    // Exact fit: one message in the slot and kHostQueueLimit queued behind it.
    const uint64_t eoms_before = synic::stats(cpu, kTestSint).end_of_messages;
    KEXPECT(post_from(cpu, message_request(cpu, kHostQueueLimit + 1)) == Status::kSuccess);
    KASSERT(wait_for_arrivals(kHostQueueLimit + 1));
    KEXPECT_EQ(synic::stats(cpu, kTestSint).end_of_messages - eoms_before, uint64_t{kHostQueueLimit});
    // One past: the host refuses the message that finds the queue full, and says so.
    const uint32_t first = arrivals();
    KEXPECT(post_from(cpu, message_request(cpu, kHostQueueLimit + 2)) == Status::kInsufficientBuffers);
    KASSERT(wait_for_arrivals(first + kHostQueueLimit + 1));
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(arrivals(), first + kHostQueueLimit + 1);  // the refused one never comes
    for (uint32_t k = 0; k <= kHostQueueLimit; ++k) {
        KEXPECT_EQ(recorder.arrivals[first + k].index, k);
        KEXPECT(recorder.arrivals[first + k].intact);
    }
    KEXPECT(slot_is_free(cpu));
}

KTEST(vmbus_synic, event_flags_reach_each_vp) {
    KSKIP_UNLESS(synic::available() && echo_present(), kNoEcho);
    constexpr uint32_t kFlags[] = {0, 63, 64, kEventFlagsPerSint - 1};  // word edges and the last flag
    TestSint sint(0);
    KASSERT(sint.attached());
    const uint32_t cpus = smp::online_count();
    uint32_t expected = 0;
    for (uint32_t i = 0; i < cpus; ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        for (uint32_t flag : kFlags) {
            KASSERT(post(flag_request(cpu, flag)) == Status::kSuccess);
            KASSERT(wait_for_arrivals(++expected));
            KEXPECT_EQ(recorder.arrivals[expected - 1].cpu, cpu);
            KEXPECT_EQ(recorder.arrivals[expected - 1].index, flag);
        }
        KEXPECT(post(flag_request(cpu, kEventFlagsPerSint)) == Status::kInvalidParameter);  // one past
        const uint64_t* words = synic::event_flag_words(cpu, kTestSint);
        for (uint32_t word = 0; word < kEventFlagsPerSint / 64; ++word) KEXPECT_EQ(words[word], 0u);
    }
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(arrivals(), expected);  // each flag once
}

KTEST(vmbus_synic, a_flag_already_set_raises_no_interrupt) {
    KSKIP_UNLESS(synic::available() && echo_present(), kNoEcho);
    constexpr uint32_t kPendingFlag = 100, kFreshFlag = 101;
    TestSint sint(0);
    KASSERT(sint.attached());
    const uint32_t cpu = test::last_online_cpu();
    uint64_t* words = synic::event_flag_words(cpu, kTestSint);
    // As if the host had set it and its interrupt were being handled elsewhere: the next host
    // signal of the same flag finds it set and must not raise the SINT.
    __atomic_fetch_or(&words[kPendingFlag / 64], 1ull << (kPendingFlag % 64), __ATOMIC_SEQ_CST);
    const uint64_t interrupts_before = synic::cpu_stats(cpu).interrupts;
    KEXPECT(post(flag_request(cpu, kPendingFlag)) == Status::kSuccess);
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(synic::cpu_stats(cpu).interrupts, interrupts_before);
    KEXPECT_EQ(arrivals(), 0u);
    KEXPECT(__atomic_load_n(&words[kPendingFlag / 64], __ATOMIC_RELAXED) & (1ull << (kPendingFlag % 64)));
    // A clear flag raises it once, and that one scan finds both.
    KEXPECT(post(flag_request(cpu, kFreshFlag)) == Status::kSuccess);
    KASSERT(wait_for_arrivals(2));
    sched::sleep_ns(kSettleNs);
    KEXPECT_EQ(synic::cpu_stats(cpu).interrupts, interrupts_before + 1);
    KEXPECT_EQ(arrivals(), 2u);
    KEXPECT_EQ(recorder.arrivals[0].index + recorder.arrivals[1].index, kPendingFlag + kFreshFlag);
    KEXPECT_EQ(recorder.arrivals[0].cpu, cpu);
    KEXPECT_EQ(recorder.arrivals[1].cpu, cpu);
}

}  // namespace hvkvm::guest
