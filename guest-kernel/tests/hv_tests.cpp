// The hypervisor interface: discovery, synthetic MSRs, and every hypercall, including the inputs
// it must refuse (each with the status the TLFS assigns, never a crash of the VMM).
#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/fault_probe.h"
#include "arch/x86_64/per_cpu.h"
#include "hv/hypervisor.h"
#include "kernel/sched/scheduler.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "arch/x86_64/time.h"
#include "lib/string.h"
#include "mm/page_allocator.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

using namespace abi::hv;

// A page of guest RAM for raw calls with hand-made (also malformed) inputs.
struct CallPage {
    uint64_t address = mm::allocate_pages(0);
    ~CallPage() { if (address) mm::free_pages(address, 0); }
    PostMessageInput& message(uint64_t offset = 0) { return *reinterpret_cast<PostMessageInput*>(address + offset); }
};

Status raw(uint64_t control, uint64_t input, uint64_t output = 0) { return status_of(hv::hypercall(control, input, output)); }

PostMessageInput console_message(const char* text) {
    PostMessageInput message{};
    message.connection_id = kConsoleConnectionId;
    message.message_type = kMessageTypeConsoleText;
    message.payload_size = static_cast<uint32_t>(strlen(text));
    memcpy(message.payload, text, message.payload_size);
    return message;
}

constexpr uint64_t kBeyondRam = 0x0000400000000000ull;  // canonical, never guest RAM

}  // namespace

KTEST(hv, interface_is_discovered) {
    KASSERT(hv::available());
    KEXPECT(strcmp(x86::cpu_features().hypervisor_signature, kVendorSignature) == 0);
    KEXPECT_EQ(x86::cpu_features().hypervisor_leaves[1].eax, kInterfaceSignature);
    KEXPECT(hv::host_logical_processors() > 0);
    KEXPECT(hv::recommended_spin_count() > 0);
}

namespace {
void record_vp_index(void* result) { *static_cast<uint32_t*>(result) = hv::vp_index(); }
}  // namespace

KTEST(hv, vp_index_msr_names_each_cpu) {
    for (uint32_t i = 0; i < smp::online_count(); ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        uint32_t vp = ~0u;
        smp::run_on_cpu(cpu, record_vp_index, &vp);
        KEXPECT_EQ(vp, cpu);
    }
}

KTEST(hv, synthetic_msrs_fault_where_the_tlfs_says) {
    uint64_t value;
    KEXPECT(!x86::probe_wrmsr(kMsrVpIndex, 5));         // read-only
    KEXPECT(!x86::probe_wrmsr(kMsrTimeRefCount, 0));    // read-only
    KEXPECT(!x86::probe_rdmsr(0x400000fe, value));      // not implemented
    KEXPECT(!x86::probe_wrmsr(kMsrHypercall, kBeyondRam | kHypercallEnable));  // page not RAM
    KEXPECT(x86::probe_rdmsr(kMsrHypercall, value));
    KEXPECT(value & kHypercallEnable);                   // the refused write changed nothing
    KEXPECT(x86::probe_rdmsr(kMsrTscFrequency, value));
    KEXPECT_EQ(value, time::tsc_khz() * 1000);
    KEXPECT(x86::probe_rdmsr(kMsrApicFrequency, value));
    KEXPECT_EQ(value, 1000000000u);
}

KTEST(hv, reference_time_from_msr_and_hypercall_agree) {
    const uint64_t first = hv::reference_counter_100ns();
    uint64_t from_call = 0;
    KEXPECT_EQ(static_cast<uint32_t>(hv::get_reference_time(from_call)), static_cast<uint32_t>(Status::kSuccess));
    sched::sleep_ns(10'000'000);
    const uint64_t last = hv::reference_counter_100ns();
    KEXPECT(first <= from_call && from_call <= last);
    KEXPECT(last - first >= 100'000);             // 10 ms in 100 ns units
    KEXPECT(last - first < 100'000 + 1'000'000);  // and not wildly more
    CallPage page;
    KEXPECT(raw(make_control(CallCode::kGetReferenceTime), 0, page.address + 4) == Status::kInvalidAlignment);
    KEXPECT(raw(make_control(CallCode::kGetReferenceTime), 0, kBeyondRam) == Status::kInvalidAlignment);
    KEXPECT(raw(make_control(CallCode::kGetReferenceTime, true), 0, 0) == Status::kInvalidHypercallInput);
}

KTEST(hv, control_word_is_validated) {
    KEXPECT(raw(0x7777 | kControlFast, 0) == Status::kInvalidHypercallCode);
    KEXPECT(raw(make_control(CallCode::kNotifyLongSpinWait, true) | (1ull << kControlRepCountShift), 0) ==
            Status::kInvalidHypercallInput);
    KEXPECT(raw(make_control(CallCode::kNotifyLongSpinWait, true) | (1ull << 31), 0) == Status::kInvalidHypercallInput);
    KEXPECT(raw(make_control(CallCode::kNotifyLongSpinWait, true) | (1ull << kControlVarHeaderShift), 0) ==
            Status::kInvalidHypercallInput);
    KEXPECT(raw(make_control(CallCode::kNotifyLongSpinWait, true) | (1ull << kControlRepStartShift), 0) ==
            Status::kInvalidHypercallInput);
}

KTEST(hv, notify_long_spin_wait) {
    KEXPECT(hv::notify_long_spin_wait(4096) == Status::kSuccess);
}

KTEST(hv, post_message_delivers_and_refuses_bad_input) {
    CallPage page;
    KASSERT(page.address != 0);
    const char* text = "    (hv test: this line came through HvCallPostMessage)\n";
    KEXPECT(hv::post_message(kConsoleConnectionId, kMessageTypeConsoleText, text, static_cast<uint32_t>(strlen(text))) ==
            Status::kSuccess);
    const uint64_t post = make_control(CallCode::kPostMessage);
    auto try_message = [&](PostMessageInput message, uint64_t offset = 0) {
        page.message(offset) = message;
        return raw(post, page.address + offset);
    };
    PostMessageInput message = console_message("");
    message.connection_id = 0x00abcd;
    KEXPECT(try_message(message) == Status::kInvalidConnectionId);
    message = console_message("");
    message.payload_size = 241;
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    message.payload_size = 0;
    message.message_type = 0;
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    message.message_type = 0x80000001;
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    message.message_type = 2;  // not console text
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    message = console_message("");
    message.reserved = 1;
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    message = console_message("");
    message.connection_id = kConsoleConnectionId | 0x01000000;  // bits 31:24 are reserved
    KEXPECT(try_message(message) == Status::kInvalidParameter);
    KEXPECT(try_message(console_message(""), 8) == Status::kSuccess);        // aligned, same page
    KEXPECT(try_message(console_message(""), 4) == Status::kInvalidAlignment);
    KEXPECT(try_message(console_message(""), 4096 - 256) == Status::kSuccess);           // ends at the page end
    KEXPECT(try_message(console_message(""), 4096 - 248) == Status::kInvalidAlignment);  // crosses it by 8 bytes
    KEXPECT(raw(post, kBeyondRam) == Status::kInvalidAlignment);
    KEXPECT(raw(post | kControlFast, page.address) == Status::kInvalidHypercallInput);
}

KTEST(hv, signal_event_through_doorbell_and_vmm) {
    KEXPECT(hv::signal_event(kLoopbackEventConnectionId) == Status::kSuccess);  // ioeventfd, no exit
    for (int i = 0; i < 100; ++i) hv::signal_event(kLoopbackEventConnectionId);
    KEXPECT(hv::signal_event(0x00dead) == Status::kInvalidConnectionId);        // no ioeventfd: VMM answers
    KEXPECT(hv::signal_event(kLoopbackEventConnectionId, 1) == Status::kInvalidParameter);  // one flag only
    const uint64_t fast = make_control(CallCode::kSignalEvent, true);
    KEXPECT(raw(fast, kLoopbackEventConnectionId | (1ull << 48)) == Status::kInvalidHypercallInput);
    KEXPECT(raw(fast, kLoopbackEventConnectionId | 0x01000000) == Status::kInvalidParameter);
    CallPage page;
    *reinterpret_cast<uint64_t*>(page.address) = kLoopbackEventConnectionId;  // the memory form
    KEXPECT(raw(make_control(CallCode::kSignalEvent), page.address) == Status::kSuccess);
    KEXPECT(raw(make_control(CallCode::kSignalEvent), page.address + 2) == Status::kInvalidAlignment);
}

KTEST(hv, wait_for_kick_times_out_or_takes_a_pending_kick) {
    platform::InterruptsDisabled stay_on_this_cpu;
    const uint64_t start = time::now_ns();
    KEXPECT(hv::wait_for_kick(10'000) == Status::kTimeout);  // 1 ms
    KEXPECT(time::now_ns() - start >= 1'000'000);
    KEXPECT(hv::kick_vp(this_cpu().index) == Status::kSuccess);
    KEXPECT(hv::wait_for_kick(10'000'000) == Status::kSuccess);  // the kick was already pending
    KEXPECT(hv::kick_vp(999) == Status::kInvalidVpIndex);         // no doorbell: the VMM answers
    KEXPECT(raw(make_control(CallCode::kKickVp, true), 1ull << 32) == Status::kInvalidVpIndex);
    KEXPECT(raw(make_control(CallCode::kKickVp), 0) == Status::kInvalidHypercallInput);
    KEXPECT(raw(make_control(CallCode::kWaitForKick), 0) == Status::kInvalidHypercallInput);
}

namespace {

struct KickRun {
    uint32_t waiter_cpu;
    bool waiting;
    Status result;
    uint64_t waited_ns;
};

void wait_to_be_kicked(void* context, uint32_t index) {
    auto& run = *static_cast<KickRun*>(context);
    platform::InterruptsDisabled stay_on_this_cpu;
    if (index == 0) {
        run.waiter_cpu = this_cpu().index;
        const uint64_t start = time::now_ns();
        __atomic_store_n(&run.waiting, true, __ATOMIC_RELEASE);
        run.result = hv::wait_for_kick(0);  // no time limit: only the kick ends it
        run.waited_ns = time::now_ns() - start;
    } else {
        while (!__atomic_load_n(&run.waiting, __ATOMIC_ACQUIRE)) x86::pause();
        time::spin_for_ns(2'000'000);  // let it block in the VMM
        hv::kick_vp(run.waiter_cpu);
    }
}

}  // namespace

KTEST(hv, kick_wakes_a_halted_vp) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: one halts, the other kicks it");
    KickRun run{};
    KASSERT(test::run_in_threads(2, test::Placement::kOnePerCpu, wait_to_be_kicked, &run));
    KEXPECT(run.result == Status::kSuccess);
    KEXPECT(run.waited_ns >= 2'000'000);
}

}  // namespace hvkvm::guest
