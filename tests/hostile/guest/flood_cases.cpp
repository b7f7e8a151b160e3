// Floods: console output on every path (PostMessage and the UART, from every vCPU), for a while
// or until the VMM is stopped; every log line a guest can provoke, thousands of times; hypercalls
// from every vCPU. Which end of the console is slow or gone is the runner's choice (--stdout).
#include "cases.h"
#include "guest.h"
#include "hv.h"

namespace hostile {
namespace {

using namespace hvkvm::abi::hv;

constexpr uint16_t kComData = 0x3f8;

// "flood NNNNNNNN from vCPU N ..." padded to 120 bytes.
size_t flood_line(char (&line)[128], uint64_t number, uint32_t cpu) {
    const char digits[] = "0123456789";
    size_t length = 0;
    for (const char* s = "flood "; *s; ++s) line[length++] = *s;
    for (uint64_t divisor = 10000000; divisor; divisor /= 10) line[length++] = digits[number / divisor % 10];
    for (const char* s = " from vCPU "; *s; ++s) line[length++] = *s;
    line[length++] = digits[cpu / 10 % 10];
    line[length++] = digits[cpu % 10];
    while (length < 119) line[length++] = '.';
    line[length++] = '\n';
    return length;
}

// `mb=N` MiB through PostMessage from every vCPU together (default 4), or without end
// (`mb=forever`), announcing itself first so that the runner can time a signal.
// `bytes` of flood lines from this vCPU through PostMessage; 0: without end.
void send_flood_lines(uint32_t cpu, uint64_t bytes) {
    char line[128];
    uint64_t sent = 0;
    for (uint64_t number = 0; bytes == 0 || sent < bytes; ++number) {
        const size_t length = flood_line(line, number, cpu);
        hv::console_write(line, length);
        sent += length;
    }
}

uint64_t flood_bytes;  // in all, shared out between the vCPUs
uint32_t flooders_done;
void flood_messages(uint32_t cpu) {
    send_flood_lines(cpu, flood_bytes / vcpu_count());
    atomic_add(flooders_done, 1u);
}

void console_flood() {
    if (!hv::enable()) check(false, "hypercall page refused");
    flood_bytes = command_line_equals("mb", "forever") ? 0 : command_line_number("mb", 4) << 20;
    say("console flood running");
    start_all_aps(flood_messages);
    flood_messages(0);
    wait_for_count(flooders_done, vcpu_count());
}

// The UART path, byte by byte (one exit each) from every vCPU at once, interleaved with
// PostMessage text: vCPU 0's lines are longer than the VMM's line buffer.
uint32_t uart_writers_done;
void uart_lines(uint32_t cpu) {
    const int length = cpu == 0 ? 5000 : 300;
    for (int line = 0; line < 2; ++line) {
        for (int i = 0; i < length; ++i) outb(kComData, static_cast<uint8_t>('A' + (cpu + i) % 26));
        outb(kComData, '\n');
        hv::console_write("interleaved message\n", 20);
    }
    atomic_add(uart_writers_done, 1u);
}

// With `first-mb=N`, N MiB of PostMessage text go first, so that the UART's lines meet a full
// console backlog (stdout unread) or a console that has failed (reader gone).
void console_flood_uart() {
    if (!hv::enable()) check(false, "hypercall page refused");
    if (const uint64_t first = command_line_number("first-mb", 0) << 20) send_flood_lines(0, first);
    start_all_aps(uart_lines);
    uart_lines(0);
    wait_for_count(uart_writers_done, vcpu_count());
}

// 20,000 requests to start vCPUs that the VMM must refuse, each of which used to print a warning.
void log_flood_start() {
    const uint64_t count = command_line_number("count", 20000);
    static abi::VcpuStartRequest request;
    for (uint64_t i = 0; i < count; ++i) {
        outl(abi::kStartVcpuPort, 0xfffffff0u);  // not RAM: nowhere to write a status
        request = make_start_request(0, nullptr);  // vCPU 0 cannot be started
        outl(abi::kStartVcpuPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(&request)));
        check(atomic_load(request.status) == abi::VcpuStartStatus::kInvalidVcpu, "start of vCPU 0: status %u",
              static_cast<uint64_t>(request.status));
        if (any_check_failed()) return;
    }
}

// Every other guest-triggered log line (the runner adds --verbose, so debug lines count too):
// unclaimed ports and MMIO, faulting MSRs, unknown milestones, refused starts, many times each.
void log_flood_all() {
    const uint64_t count = command_line_number("count", 3000);
    for (uint64_t i = 0; i < count; ++i) {
        (void)inb(0x1234);
        outb(0x1234, 1);
        (void)*reinterpret_cast<volatile uint32_t*>(0xd0000000ull + (i & 0xfff) * 4);
        *reinterpret_cast<volatile uint32_t*>(0xd0000000ull) = 1;
        uint64_t value = 0;
        (void)probe_rdmsr(0x400000ff, value);
        (void)probe_wrmsr(0x40000002, 1);
        outl(abi::kBootMilestonePort, 0x1000 + static_cast<uint32_t>(i));
        outl(abi::kStartVcpuPort, 0xfffffff1u);
        outl(abi::kStartVcpuPort, 7);  // misaligned
    }
}

// Hypercalls from every vCPU: 24,000 in all, 8,000 of them loopback signals (the runner checks
// that exactly that many events were counted).
constexpr uint32_t kCallsPerKind = 8000;
uint32_t callers_done;
void call_flood(uint32_t cpu) {
    const uint32_t share = kCallsPerKind / vcpu_count() + (cpu < kCallsPerKind % vcpu_count() ? 1 : 0);
    for (uint32_t i = 0; i < share; ++i) {
        check(hv::notify_long_spin_wait(i) == Status::kSuccess, "NotifyLongSpinWait failed");
        check(hv::signal_event(kLoopbackEventConnectionId) == Status::kSuccess, "SignalEvent failed");
        check(hv::kick_vp(vcpu_count()) == Status::kInvalidVpIndex, "KickVp of a missing VP");
    }
    atomic_add(callers_done, 1u);
}

void hypercall_flood() {
    if (!hv::enable()) check(false, "hypercall page refused");
    start_all_aps(call_flood);
    call_flood(0);
    wait_for_count(callers_done, vcpu_count());
}

const Case kCases[] = {
    {"console-flood", console_flood},     {"console-flood-uart", console_flood_uart},
    {"log-flood-start", log_flood_start}, {"log-flood-all", log_flood_all},
    {"hypercall-flood", hypercall_flood},
};

}  // namespace

const CaseGroup kFloodCases = group(kCases);

}  // namespace hostile
