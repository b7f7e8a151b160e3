// Hypercall abuse: every call with bad codes, control bits, GPAs and sizes (buffers that end
// exactly at a page or RAM end, and one byte further), the hypercall page itself moved, corrupted
// and locked, and the doorbell ports written every way but the page's own. Each status the VMM
// returns is checked against docs/hypercalls.md.
#include "cases.h"
#include "guest.h"
#include "hv.h"
#include "port_io.h"

namespace hostile {
namespace {

using namespace hvkvm::abi::hv;

constexpr uint64_t kNotRam = 0xdeadbeef000ull;

void expect(Status got, Status wanted, const char* what, uint64_t detail = 0) {
    check(got == wanted, "%s (%x): status %x, expected %x", what, detail, static_cast<uint64_t>(got),
          static_cast<uint64_t>(wanted));
}

bool documented(Status status) {
    switch (status) {
    case Status::kSuccess: case Status::kInvalidHypercallCode: case Status::kInvalidHypercallInput:
    case Status::kInvalidAlignment: case Status::kInvalidParameter: case Status::kAccessDenied:
    case Status::kInvalidVpIndex: case Status::kInvalidConnectionId: case Status::kInsufficientBuffers:
    case Status::kTimeout:
        return true;
    }
    return false;
}

bool is_known(uint16_t code) {
    switch (static_cast<CallCode>(code)) {
    case CallCode::kNotifyLongSpinWait: case CallCode::kPostMessage: case CallCode::kSignalEvent:
    case CallCode::kGetReferenceTime: case CallCode::kKickVp: case CallCode::kWaitForKick:
        return true;
    }
    return false;
}

void require_page() {
    if (!hv::enable()) {
        check(false, "the VMM refused the hypercall page");
        exit_vm(static_cast<uint32_t>(abi::GuestExitCode::kFailure));
    }
}

// A page of the guest's scratch RAM for inputs and outputs, and the last page of RAM.
uint8_t* test_page() { return reinterpret_cast<uint8_t*>(scratch_memory().base); }
uint8_t* last_ram_page() { return reinterpret_cast<uint8_t*>(ram_end_below_hole() - kPageSize); }

PostMessageInput console_message(const char* text) {
    PostMessageInput message{};
    message.connection_id = kConsoleConnectionId;
    message.message_type = kMessageTypeConsoleText;
    for (; text[message.payload_size]; ++message.payload_size) message.payload[message.payload_size] = static_cast<uint8_t>(text[message.payload_size]);
    return message;
}

Status post_at(uint8_t* where, const PostMessageInput& message) {
    memcpy(where, &message, sizeof message);
    return hv::call_status(make_control(CallCode::kPostMessage), reinterpret_cast<uint64_t>(where), 0);
}

// Every code 0..0x10ff and the top of the range, fast and not, with garbage inputs: unknown codes
// are refused, known ones answer with a documented status. (WaitForKick gets a 100 ns timeout.)
void hypercall_codes() {
    require_page();
    for (uint32_t code = 0; code <= 0xffff; code = code < 0x10ff ? code + 1 : code * 2 + 1) {
        for (bool fast : {false, true}) {
            const auto code16 = static_cast<uint16_t>(code);
            const uint64_t input = code16 == static_cast<uint16_t>(CallCode::kWaitForKick) ? 1 : kNotRam;
            const Status status = hv::call_status(code16 | (fast ? kControlFast : 0), input, 1);
            if (is_known(code16)) check(documented(status), "code %x: undocumented status %x", uint64_t{code}, static_cast<uint64_t>(status));
            else expect(status, Status::kInvalidHypercallCode, "unknown code", code);
        }
    }
}

// Each call with each control bit the simple calls must leave clear.
void hypercall_control_bits() {
    require_page();
    constexpr CallCode kCalls[] = {CallCode::kNotifyLongSpinWait, CallCode::kPostMessage, CallCode::kSignalEvent,
                                   CallCode::kGetReferenceTime,  CallCode::kKickVp,      CallCode::kWaitForKick};
    for (CallCode call : kCalls) {
        for (uint32_t bit = 17; bit < 64; ++bit) {
            for (bool fast : {false, true}) {
                const uint64_t control = make_control(call, fast) | (1ull << bit);
                expect(hv::call_status(control, 1, 0), Status::kInvalidHypercallInput, "control with a reserved bit", control);
            }
        }
    }
}

void post_message_limits() {
    uint8_t* page = test_page();
    PostMessageInput message = console_message("hostile: PostMessage ending exactly at a page end\n");
    expect(post_at(page + kPageSize - sizeof message, message), Status::kSuccess, "PostMessage input ending at a page end");
    expect(post_at(page + kPageSize - sizeof message + 8, message), Status::kInvalidAlignment, "PostMessage input 8 bytes into the next page");
    expect(hv::call_status(make_control(CallCode::kPostMessage), reinterpret_cast<uint64_t>(page + kPageSize - sizeof message + 1), 0),
           Status::kInvalidAlignment, "PostMessage input one byte into the next page");
    for (uint64_t misalign = 1; misalign < 8; ++misalign)
        expect(post_at(page + misalign, message), Status::kInvalidAlignment, "PostMessage input misaligned by", misalign);
    message = console_message("hostile: PostMessage ending exactly at the end of RAM\n");
    uint8_t* ram_end = last_ram_page() + kPageSize;
    expect(post_at(ram_end - sizeof message, message), Status::kSuccess, "PostMessage input ending at the end of RAM");
    for (uint64_t gpa : {ram_end_below_hole() - sizeof message + 8, ram_end_below_hole(), uint64_t{0xfffff000},
                         uint64_t{1} << 63, ~uint64_t{7}, uint64_t{kNotRam}})
        expect(hv::call_status(make_control(CallCode::kPostMessage), gpa, 0), Status::kInvalidAlignment, "PostMessage input at", gpa);

    message = console_message("");
    message.payload_size = kMessagePayloadMax;
    memset(message.payload, '.', kMessagePayloadMax);
    message.payload[kMessagePayloadMax - 1] = '\n';
    expect(post_at(page, message), Status::kSuccess, "PostMessage with the largest payload");
    message.payload_size = kMessagePayloadMax + 1;
    expect(post_at(page, message), Status::kInvalidParameter, "PostMessage payload one byte too large");
    message.payload_size = 0xffffffff;
    expect(post_at(page, message), Status::kInvalidParameter, "PostMessage payload size", 0xffffffff);

    struct Mutation {
        const char* what;
        void (*apply)(PostMessageInput&);
        Status expected;
    };
    const Mutation mutations[] = {
        {"message type 0", [](PostMessageInput& m) { m.message_type = 0; }, Status::kInvalidParameter},
        {"message type bit 31", [](PostMessageInput& m) { m.message_type = 0x80000001; }, Status::kInvalidParameter},
        {"console message type 2", [](PostMessageInput& m) { m.message_type = 2; }, Status::kInvalidParameter},
        {"reserved field set", [](PostMessageInput& m) { m.reserved = 1; }, Status::kInvalidParameter},
        {"connection id bits 31:24", [](PostMessageInput& m) { m.connection_id |= 0x01000000; }, Status::kInvalidParameter},
        {"unknown connection", [](PostMessageInput& m) { m.connection_id = 0x999; }, Status::kInvalidConnectionId},
        {"an event connection", [](PostMessageInput& m) { m.connection_id = kLoopbackEventConnectionId; }, Status::kInvalidConnectionId},
    };
    for (const Mutation& mutation : mutations) {
        message = console_message("hostile: must not appear\n");
        mutation.apply(message);
        expect(post_at(page, message), mutation.expected, mutation.what);
    }
    expect(hv::call_status(make_control(CallCode::kPostMessage, true), 0, 0), Status::kInvalidHypercallInput, "fast PostMessage");
}

void signal_event_limits() {
    uint8_t* page = test_page();
    const uint64_t signal_memory = make_control(CallCode::kSignalEvent);
    auto signal_from = [&](uint8_t* where, uint64_t input) {
        memcpy(where, &input, sizeof input);
        return hv::call_status(signal_memory, reinterpret_cast<uint64_t>(where), 0);
    };
    expect(signal_from(page + kPageSize - 8, kLoopbackEventConnectionId), Status::kSuccess, "SignalEvent input ending at a page end");
    expect(hv::call_status(signal_memory, reinterpret_cast<uint64_t>(page + kPageSize - 4), 0), Status::kInvalidAlignment,
           "SignalEvent input 4 bytes into the next page");
    expect(hv::call_status(signal_memory, reinterpret_cast<uint64_t>(page + kPageSize - 7), 0), Status::kInvalidAlignment,
           "SignalEvent input one byte into the next page");
    expect(signal_from(last_ram_page() + kPageSize - 8, kLoopbackEventConnectionId), Status::kSuccess,
           "SignalEvent input ending at the end of RAM");
    expect(hv::call_status(signal_memory, ram_end_below_hole(), 0), Status::kInvalidAlignment, "SignalEvent input past RAM");
    // Fast: through the page's doorbell (an ioeventfd, or the VMM when none matches) or its
    // generic path (flag number or reserved bits set).
    const uint64_t fast = make_control(CallCode::kSignalEvent, true);
    expect(hv::call_status(fast, kLoopbackEventConnectionId, 0), Status::kSuccess, "SignalEvent loopback");
    expect(hv::call_status(fast, kLoopbackEventConnectionId | (1ull << 32), 0), Status::kInvalidParameter, "SignalEvent flag 1");
    expect(hv::call_status(fast, kLoopbackEventConnectionId | (1ull << 48), 0), Status::kInvalidHypercallInput, "SignalEvent bit 48");
    expect(hv::call_status(fast, 0x01000200, 0), Status::kInvalidParameter, "SignalEvent connection id bits 31:24");
    expect(hv::call_status(fast, 0x999, 0), Status::kInvalidConnectionId, "SignalEvent unknown connection");
    expect(hv::call_status(fast, kConsoleConnectionId, 0), Status::kInvalidConnectionId, "SignalEvent to a message connection");
}

void reference_time_and_vp_limits() {
    uint8_t* page = test_page();
    const uint64_t get_time = make_control(CallCode::kGetReferenceTime);
    const auto time_at = [&](uint64_t gpa) { return hv::call_status(get_time, 0, gpa); };
    expect(time_at(reinterpret_cast<uint64_t>(page + kPageSize - 8)), Status::kSuccess, "GetReferenceTime output ending at a page end");
    check(*reinterpret_cast<uint64_t*>(page + kPageSize - 8) != 0, "GetReferenceTime wrote 0");
    expect(time_at(reinterpret_cast<uint64_t>(page + kPageSize - 4)), Status::kInvalidAlignment, "GetReferenceTime output crossing a page");
    expect(time_at(reinterpret_cast<uint64_t>(page + kPageSize - 7)), Status::kInvalidAlignment,
           "GetReferenceTime output one byte into the next page");
    expect(time_at(ram_end_below_hole() - 7), Status::kInvalidAlignment, "GetReferenceTime output one byte past RAM");
    expect(time_at(ram_end_below_hole() - 8), Status::kSuccess, "GetReferenceTime output ending at the end of RAM");
    expect(time_at(ram_end_below_hole()), Status::kInvalidAlignment, "GetReferenceTime output past RAM");
    expect(time_at(0xfee00000), Status::kInvalidAlignment, "GetReferenceTime output on the LAPIC");
    expect(hv::call_status(make_control(CallCode::kGetReferenceTime, true), 0, 0), Status::kInvalidHypercallInput, "fast GetReferenceTime");

    const uint64_t last_vp = vcpu_count() - 1;
    expect(hv::kick_vp(last_vp), Status::kSuccess, "KickVp of the last VP");
    expect(hv::kick_vp(vcpu_count()), Status::kInvalidVpIndex, "KickVp one past the last VP");
    expect(hv::kick_vp(0xffffffff), Status::kInvalidVpIndex, "KickVp 0xffffffff");
    expect(hv::kick_vp(1ull << 32), Status::kInvalidVpIndex, "KickVp 2^32");
    expect(hv::call_status(make_control(CallCode::kKickVp), 0, 0), Status::kInvalidHypercallInput, "KickVp in memory form");
    expect(hv::kick_vp(this_cpu()), Status::kSuccess, "KickVp of this VP");
    expect(hv::wait_for_kick(0), Status::kSuccess, "WaitForKick after a kick (kept)");
    expect(hv::wait_for_kick(1), Status::kTimeout, "WaitForKick for 100 ns");
    expect(hv::call_status(make_control(CallCode::kWaitForKick), 0, 0), Status::kInvalidHypercallInput, "WaitForKick in memory form");
    expect(hv::call_status(make_control(CallCode::kNotifyLongSpinWait), kNotRam, 1), Status::kSuccess,
           "NotifyLongSpinWait in memory form");
}

void hypercall_buffers() {
    require_page();
    post_message_limits();
    signal_event_limits();
    reference_time_and_vp_limits();
}

// The page moved, corrupted, disabled and locked.
void hypercall_page_abuse() {
    check(probe_wrmsr(kMsrGuestOsId, 0) == kNoFault, "GUEST_OS_ID = 0");
    check(probe_wrmsr(kMsrHypercall, hv::default_page() | kHypercallEnable) == kNoFault, "HYPERCALL without an OS id");
    uint64_t value = 0;
    check(probe_rdmsr(kMsrHypercall, value) == kNoFault && !(value & kHypercallEnable), "page enabled without an OS id");
    check(probe_wrmsr(kMsrGuestOsId, 0x1234) == kNoFault, "GUEST_OS_ID");
    for (uint64_t gpa : {ram_end_below_hole(), uint64_t{0xfffff000}, uint64_t{1} << 40, ~uint64_t{0xfff}})
        check(probe_wrmsr(kMsrHypercall, gpa | kHypercallEnable) == 13, "HYPERCALL at non-RAM %x accepted", gpa);

    // The last page of RAM works as a hypercall page.
    check(hv::enable(reinterpret_cast<uint64_t>(last_ram_page())), "hypercall page on the last page of RAM");
    expect(hv::notify_long_spin_wait(1), Status::kSuccess, "a call through the last page of RAM");
    expect(hv::kick_vp(this_cpu()), Status::kSuccess, "KickVp through the last page of RAM");
    expect(hv::wait_for_kick(0), Status::kSuccess, "WaitForKick through the last page of RAM");

    // The guest overwrites the page's `out`s, in place, with a string `out` (outsl; nop) and then
    // with a 1-byte `out`: the VMM must see each for what it is, an ordinary write to a port, and
    // let it complete without touching a register.
    require_page();
    auto* page = reinterpret_cast<uint8_t*>(hv::default_page());
    for (const uint8_t replacement : {uint8_t{0x6f}, uint8_t{0xe6}}) {
        for (size_t i = 0; i + 1 < kPageSize; ++i) {
            if (page[i] != 0xe7 || (page[i + 1] != 0xe0 && page[i + 1] != 0xe4 && page[i + 1] != 0xe8)) continue;
            page[i] = replacement;
            if (replacement == 0x6f) page[i + 1] = 0x90;  // nop after the one-byte outsl
        }
        alignas(8) static uint32_t source[2] = {0x201, 0x201};
        for (uint64_t control : {make_control(CallCode::kNotifyLongSpinWait, true), make_control(CallCode::kKickVp, true),
                                 make_control(CallCode::kSignalEvent, true)}) {
            uint64_t rcx = control, rsi = reinterpret_cast<uint64_t>(source), rdx = 0x999;
            register uint64_t r8 __asm__("r8") = 0;
            __asm__ volatile("call *%[page]" : "+c"(rcx), "+S"(rsi), "+d"(rdx), "+r"(r8) : [page] "r"(page)
                             : "rax", "r9", "r10", "r11", "memory", "cc");
        }
        require_page();  // the VMM writes the code again
    }
    say("calls through a page with its outs replaced returned");

    // Re-enabling rewrites the page; disabling, then locking, freezes the MSR.
    require_page();
    expect(hv::notify_long_spin_wait(1), Status::kSuccess, "a call after re-enabling");
    check(probe_wrmsr(kMsrHypercall, 0) == kNoFault, "disabling the page");
    check(probe_wrmsr(kMsrHypercall, hv::default_page() | kHypercallLocked) == kNoFault, "locking the page disabled");
    check(probe_wrmsr(kMsrHypercall, hv::default_page() | kHypercallEnable) == 13, "enabling after locking");
    check(probe_rdmsr(kMsrHypercall, value) == kNoFault && !(value & kHypercallEnable), "page enabled after locking");
}

// String writes to the doorbell ports are not doorbells: elements the host kernel matches to an
// ioeventfd signal it there (the loopback connection, 0x200), the rest are dropped; the VMM
// signals nothing itself, and every instruction completes exactly once. The runner checks the
// total: 2 matching string elements, 2 plain OUTs of the loopback id, 3 calls through the page.
void doorbell_strings() {
    require_page();
    alignas(8) static uint32_t elements[4] = {kLoopbackEventConnectionId, 0x201, kLoopbackEventConnectionId, 0x201};
    alignas(8) static uint32_t misses[4] = {0x201, 0x202, 0x203, 0x204};
    for (uint64_t count = 1; count <= 2; ++count) {
        StringIoResult r = outs(kSignalEventPort, 4, misses, count);
        check(r.remaining == 0 && r.pointer == reinterpret_cast<uint64_t>(misses) + 4 * count,
              "rep outsl of %u to the SignalEvent port: RCX %x, RSI moved %x", count, r.remaining,
              r.pointer - reinterpret_cast<uint64_t>(misses));
        r = outs(kKickVpPort, 4, misses, count);
        check(r.remaining == 0, "rep outsl of %u to the KickVp port: RCX %x", count, r.remaining);
        for (uint32_t size : {1u, 2u}) {
            r = outs(kSignalEventPort, size, misses, count);
            check(r.remaining == 0, "rep outs%u of %u to the SignalEvent port: RCX %x", uint64_t{size}, count, r.remaining);
            r = outs(kKickVpPort, size, misses, count);
            check(r.remaining == 0, "rep outs%u of %u to the KickVp port: RCX %x", uint64_t{size}, count, r.remaining);
        }
    }
    const StringIoResult r = outs(kSignalEventPort, 4, elements, 4);
    check(r.remaining == 0, "rep outsl of 4 mixed elements: RCX %x", r.remaining);
    for (int i = 0; i < 3; ++i) expect(hv::signal_event(kLoopbackEventConnectionId), Status::kSuccess, "SignalEvent loopback");
    // A plain 4-byte OUT of a matching value from the guest's own code: the ioeventfd takes it.
    out_any(kSignalEventPort, 4, kLoopbackEventConnectionId);
    out_any(kSignalEventPort, 4, kLoopbackEventConnectionId);
}

const Case kCases[] = {
    {"hypercall-codes", hypercall_codes},
    {"hypercall-control-bits", hypercall_control_bits},
    {"hypercall-buffers", hypercall_buffers},
    {"hypercall-page-abuse", hypercall_page_abuse},
    {"doorbell-strings", doorbell_strings},
};

}  // namespace

const CaseGroup kHypercallCases = group(kCases);

}  // namespace hostile
