// SMP races: the hypercall page rewritten while other vCPUs call through it; bogus, racing and
// mutating requests on the start-vCPU port; every vCPU waiting for kicks; and `hang`, which parks
// every vCPU in one activity until the runner stops the VMM with a signal.
#include "cases.h"
#include "guest.h"
#include "hv.h"

namespace hostile {
namespace {

using namespace hvkvm::abi::hv;
using abi::VcpuStartStatus;

void require_page() {
    if (!hv::enable()) {
        check(false, "the VMM refused the hypercall page");
        exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kFailure));
    }
}

// --- the hypercall page rewritten under its callers -------------------------------------------
uint32_t rewriting_done, callers_ready, callers_done;

// One call down each of the page's paths: the KickVp doorbell answered by the VMM, the
// SignalEvent doorbell completed by an ioeventfd, and the generic exit.
void call_each_path() {
    check(hv::kick_vp(vcpu_count()) == Status::kInvalidVpIndex, "KickVp doorbell during rewrites");
    check(hv::signal_event(kLoopbackEventConnectionId) == Status::kSuccess, "SignalEvent doorbell during rewrites");
    const uint64_t control = make_control(CallCode::kGetReferenceTime, true);
    check(hv::call_status(control, 0, 0) == Status::kInvalidHypercallInput, "a generic call during rewrites");
}

void call_through_page(uint32_t) {
    atomic_add(callers_ready, 1u);
    while (!atomic_load(rewriting_done) && !any_check_failed()) call_each_path();
    atomic_add(callers_done, 1u);
}

// Three callers at most, the other vCPUs halted: with more busy vCPUs than host cores, callers and
// rewriter would rarely run at the same moment, which is the race this case is about.
constexpr uint32_t kMaxCallers = 3;

void call_or_halt(uint32_t cpu) {
    if (cpu > kMaxCallers) halt_forever();
    call_through_page(cpu);
}

void page_rewrite_race() {
    require_page();
    start_all_aps(call_or_halt);
    const uint32_t callers = vcpu_count() - 1 < kMaxCallers ? vcpu_count() - 1 : kMaxCallers;
    wait_for_count(callers_ready, callers);
    const uint64_t rewrites = command_line_number("rewrites", 4000);
    for (uint64_t i = 0; i < rewrites && !any_check_failed(); ++i) {
        check(probe_wrmsr(kMsrHypercall, hv::default_page() | kHypercallEnable) == kNoFault, "re-enabling the page");
        if (vcpu_count() == 1) call_each_path();  // no other vCPU: alternate
    }
    atomic_store(rewriting_done, 1u);
    wait_for_count(callers_done, callers);
}

// --- bogus start requests ---------------------------------------------------------------------
uint32_t bogus_ap_ran;
void note_running(uint32_t) { atomic_add(bogus_ap_ran, 1u); }

void expect_status(const abi::VcpuStartRequest& request, VcpuStartStatus wanted, const char* what) {
    const VcpuStartStatus got = atomic_load(request.status);
    check(got == wanted, "%s: status %u, expected %u", what, static_cast<uint64_t>(got), static_cast<uint64_t>(wanted));
}

void submit(const abi::VcpuStartRequest* request) {
    outl(abi::kStartVcpuPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(request)));
}

void start_requests_bogus() {
    alignas(8) static abi::VcpuStartRequest request;
    for (uint32_t index : {0u, vcpu_count(), 0xffffffffu}) {
        request = make_start_request(index, note_running);
        submit(&request);
        expect_status(request, VcpuStartStatus::kInvalidVcpu, "start of a vCPU that cannot be started");
    }
    // Bad register state, checked only for a vCPU that exists.
    const VcpuStartStatus bad_state = vcpu_count() > 1 ? VcpuStartStatus::kInvalidState : VcpuStartStatus::kInvalidVcpu;
    const struct {
        const char* what;
        void (*spoil)(abi::VcpuStartRequest&);
    } spoilers[] = {
        {"non-canonical RIP", [](abi::VcpuStartRequest& r) { r.rip = 0x8000000000000000ull; }},
        {"non-canonical RSP", [](abi::VcpuStartRequest& r) { r.rsp = 0x0000800000000000ull; }},
        {"unaligned CR3", [](abi::VcpuStartRequest& r) { r.cr3 += 8; }},
        {"CR3 outside RAM", [](abi::VcpuStartRequest& r) { r.cr3 = 0xfffff000; }},
        {"CR3 just past RAM", [](abi::VcpuStartRequest& r) { r.cr3 = ram_end_below_hole(); }},
    };
    for (const auto& spoiler : spoilers) {
        request = make_start_request(1, note_running);
        spoiler.spoil(request);
        submit(&request);
        expect_status(request, bad_state, spoiler.what);
    }
    // Where the request lies: misaligned (refused with status 2, written where its status field
    // is), ending exactly at the end of RAM (accepted as a request), one 8-byte step further (not
    // RAM: nothing written).
    alignas(8) static uint8_t buffer[64];
    auto* misaligned = reinterpret_cast<abi::VcpuStartRequest*>(buffer + 4);
    const abi::VcpuStartRequest template_request = make_start_request(0, nullptr);
    memcpy(misaligned, &template_request, sizeof template_request);
    submit(misaligned);
    check(misaligned->status == VcpuStartStatus::kInvalidRequest, "a misaligned request got status %x, not 2",
          uint64_t{static_cast<uint32_t>(misaligned->status)});
    auto* at_end = reinterpret_cast<abi::VcpuStartRequest*>(ram_end_below_hole() - sizeof(abi::VcpuStartRequest));
    *at_end = template_request;
    submit(at_end);
    expect_status(*at_end, VcpuStartStatus::kInvalidVcpu, "a request ending exactly at the end of RAM");
    auto* past_end = reinterpret_cast<abi::VcpuStartRequest*>(ram_end_below_hole() - sizeof(abi::VcpuStartRequest) + 8);
    memcpy(past_end, &template_request, sizeof template_request - 8);
    submit(past_end);
    check(past_end->status == VcpuStartStatus::kPending, "the VMM wrote into a request that runs past RAM");
    outl(abi::kStartVcpuPort, 0xfffffff0u);
    outl(abi::kStartVcpuPort, 0);

    if (vcpu_count() > 1) {
        request = make_start_request(1, note_running);
        submit(&request);
        expect_status(request, VcpuStartStatus::kStarted, "start of vCPU 1");
        request = make_start_request(1, note_running);
        submit(&request);
        expect_status(request, VcpuStartStatus::kAlreadyStarted, "second start of vCPU 1");
        wait_for_count(bogus_ap_ran, 1);
    }
}

// --- every vCPU starts every vCPU at once ------------------------------------------------------
abi::VcpuStartRequest race_requests[kMaxCpus][kMaxCpus];
uint32_t times_started[kMaxCpus], start_wins[kMaxCpus], racers_done;

void race_to_start_everyone(uint32_t cpu) {
    atomic_add(times_started[cpu], 1u);
    for (uint32_t target = 1; target < vcpu_count(); ++target) {
        const VcpuStartStatus status = start_vcpu(race_requests[cpu][target], target, race_to_start_everyone);
        if (status == VcpuStartStatus::kStarted) atomic_add(start_wins[target], 1u);
        else check(status == VcpuStartStatus::kAlreadyStarted, "racing start of vCPU %u: status %u", uint64_t{target},
                   static_cast<uint64_t>(status));
    }
    atomic_add(racers_done, 1u);
}

void start_race() {
    require_page();  // spin_wait_hint yields through it
    race_to_start_everyone(0);
    wait_for_count(racers_done, vcpu_count());
    for (uint32_t cpu = 1; cpu < vcpu_count(); ++cpu)
        check(times_started[cpu] == 1 && start_wins[cpu] == 1, "vCPU %u ran %u times after %u successful starts",
              uint64_t{cpu}, uint64_t{times_started[cpu]}, uint64_t{start_wins[cpu]});
}

// --- a request rewritten while the VMM reads it --------------------------------------------------
alignas(8) abi::VcpuStartRequest contested;
uint32_t contest_target, contest_over, contested_ran[kMaxCpus];

void mutate_request(uint32_t) {
    const abi::VcpuStartRequest good = make_start_request(0, nullptr);
    for (uint64_t round = 0; !atomic_load(contest_over); ++round) {
        volatile abi::VcpuStartRequest& r = contested;
        r.rip = round & 1 ? 0x8000000000000000ull : good.rip;
        r.cr3 = round & 2 ? 0xfff : good.cr3;
        r.vcpu_index = round & 4 ? 0 : atomic_load(contest_target);
    }
}

void mark_contested_ran(uint32_t cpu) { atomic_store(contested_ran[cpu], 1u); }

void start_request_mutation() {
    require_page();
    if (vcpu_count() < 3) return;  // needs a mutator and a target besides the boot vCPU
    abi::VcpuStartRequest mutator_request;
    check(start_vcpu(mutator_request, 1, mutate_request) == VcpuStartStatus::kStarted, "starting the mutator");
    for (uint32_t target = 2; target < vcpu_count(); ++target) {
        const abi::VcpuStartRequest fresh = make_start_request(target, mark_contested_ran);
        atomic_store(contest_target, target);
        contested.rsp = fresh.rsp;
        contested.argument = fresh.argument;
        VcpuStartStatus status = VcpuStartStatus::kPending;
        for (uint64_t attempt = 0; attempt < 100000 && status != VcpuStartStatus::kStarted; ++attempt) {
            atomic_store(contested.status, VcpuStartStatus::kPending);
            submit(&contested);
            status = atomic_load(contested.status);
        }
        check(status == VcpuStartStatus::kStarted, "vCPU %u never started from a contested request", uint64_t{target});
        wait_for_count(contested_ran[target], 1);
    }
    atomic_store(contest_over, 1u);
}

// --- every vCPU waits for a kick -------------------------------------------------------------------
uint32_t waiters_ready, woken[kMaxCpus];

void wait_to_be_kicked(uint32_t cpu) {
    check(hv::kick_vp(cpu) == Status::kSuccess, "KickVp of itself");
    check(hv::wait_for_kick(0) == Status::kSuccess, "a kick sent before waiting was lost");
    atomic_add(waiters_ready, 1u);
    check(hv::wait_for_kick(0) == Status::kSuccess, "WaitForKick without a limit");
    atomic_store(woken[cpu], 1u);
}

void wait_for_kicks() {
    require_page();
    start_all_aps(wait_to_be_kicked);
    wait_for_count(waiters_ready, vcpu_count() - 1);
    for (uint32_t cpu = 1; cpu < vcpu_count(); ++cpu) {
        check(hv::kick_vp(cpu) == Status::kSuccess, "kicking vCPU %u", uint64_t{cpu});
        wait_for_count(woken[cpu], 1);  // one kick is enough, even one that lands before the wait
    }
}

// --- hang: every vCPU in one activity until the VMM is stopped -----------------------------------
uint32_t hangers_ready;
const char* hang_phase;

// The runner's cue for its signal, as one PostMessage: UART bytes would be split by the other
// vCPUs' console messages (the VMM flushes a partial UART line before each, to keep the order).
void announce_phase(const char* phase) {
    char line[96];
    size_t length = 0;
    for (const char* part : {"hostile: phase ", phase, " running on every vCPU\n"})
        for (; *part && length < sizeof line; ++part) line[length++] = *part;
    hv::console_write(line, length);
}

[[noreturn]] void hang_in_phase(uint32_t cpu) {
    atomic_add(hangers_ready, 1u);
    const char* phase = hang_phase;
    if (strings_equal(phase, "spin")) for (;;) cpu_relax();
    if (strings_equal(phase, "pio")) for (;;) outb(0x1234, static_cast<uint8_t>(cpu));
    if (strings_equal(phase, "mmio")) for (;;) *reinterpret_cast<volatile uint32_t*>(0xd0000000ull) = cpu;
    if (strings_equal(phase, "msr")) for (uint64_t value;;) (void)probe_rdmsr(kMsrTimeRefCount, value);
    if (strings_equal(phase, "hypercall"))
        for (;;) hv::notify_long_spin_wait(1), hv::call_status(make_control(CallCode::kGetReferenceTime), 0, 1);
    if (strings_equal(phase, "wait")) for (;;) hv::wait_for_kick(0);
    if (strings_equal(phase, "console")) {
        static constexpr char kLine[] = "hang in the console: this line repeats until the VMM stops\n";
        for (;;) hv::console_write(kLine, sizeof kLine - 1);
    }
    if (strings_equal(phase, "start") && cpu == 0) {
        alignas(8) static abi::VcpuStartRequest request;
        for (uint32_t index = 0;; index = (index + 1) % (vcpu_count() + 1)) start_vcpu(request, index, nullptr);
    }
    halt_forever();  // "halt", and the APs of "start"
}

void hang() {
    hang_phase = command_line_value("phase", "halt");
    if (strings_equal(hang_phase, "exit")) return;  // races the signal to the finish
    require_page();
    start_all_aps(hang_in_phase);
    wait_for_count(hangers_ready, vcpu_count() - 1);
    announce_phase(hang_phase);
    hang_in_phase(0);
}

const Case kCases[] = {
    {"page-rewrite-race", page_rewrite_race},
    {"start-requests-bogus", start_requests_bogus},
    {"start-race", start_race},
    {"start-request-mutation", start_request_mutation},
    {"wait-for-kicks", wait_for_kicks},
    {"hang", hang},
};

}  // namespace

const CaseGroup kSmpCases = group(kCases);

}  // namespace hostile
