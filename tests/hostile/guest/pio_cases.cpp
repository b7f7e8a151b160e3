// Port I/O abuse: every size at interesting ports, every port, string I/O with tiny and huge
// counts. The VMM must complete each instruction exactly once, change no register an OUT does not
// change, and read unclaimed ports as all-ones.
#include "cases.h"
#include "guest.h"
#include "hvkvm/abi/devices.h"
#include "port_io.h"

namespace hostile {
namespace {

constexpr uint16_t kUnclaimedPort = 0x1234;
constexpr uint16_t kUartFirst = 0x3f8, kUartLast = 0x3ff;
constexpr uint32_t kSizes[] = {1, 2, 4};

uint32_t all_ones(uint32_t size) { return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1; }

// Writing there ends the run (the debug-exit port); every other port is fair game.
bool overlaps_exit_port(uint16_t port, uint32_t size) {
    return port <= abi::kDebugExitPort && uint32_t{port} + size > abi::kDebugExitPort;
}

bool is_uart(uint16_t port) { return port >= kUartFirst && port <= kUartLast; }
// The POST-code port reads back the last code written (abi/devices.h).
bool is_claimed_readable(uint16_t port) { return is_uart(port) || port == abi::kPostCodePort; }

// Ports next to every range the VMM knows (hypercall doorbells, debug device, UART) and at the
// ends of the port space.
constexpr uint16_t kInterestingPorts[] = {
    0x0000, 0x0001, 0x0080, 0x00df, 0x00e0, 0x00e1, 0x00e3, 0x00e4, 0x00e6, 0x00e8, 0x00eb, 0x00ec, 0x00f0,
    0x00f3, 0x00f5, 0x00f7, 0x00f8, 0x00fa, 0x00fc, 0x00fe, 0x00ff, 0x0100, 0x03f7, 0x03f8, 0x03fd, 0x03ff,
    0x0400, 0x0cf8, 0x0cfc, 0x1234, 0x8000, 0xfffc, 0xfffd, 0xfffe, 0xffff};

// A non-doorbell OUT leaves RAX and RCX alone, whatever port and size; reads of ports no device
// claims are all-ones.
void pio_sizes() {
    constexpr uint64_t kRcx = 0x5a5a5a5a5a5a5a5aull;
    for (uint16_t port : kInterestingPorts) {
        for (uint32_t size : kSizes) {
            const uint32_t value = in_any(port, size);
            if (!is_claimed_readable(port))
                check(value == all_ones(size), "in%u from port %x read %x", uint64_t{size}, uint64_t{port}, uint64_t{value});
            if (overlaps_exit_port(port, size)) continue;
            for (uint64_t written : {uint64_t{0}, uint64_t{1}, uint64_t{0xdeadbeef}}) {
                const PlainOutResult after = out_keeping_registers(port, size, written, kRcx);
                check(after.rax == written && after.rcx == kRcx, "out%u %x to port %x changed RAX to %x, RCX to %x",
                      uint64_t{size}, written, uint64_t{port}, after.rax, after.rcx);
            }
        }
    }
    reset_console();
}

// Each vCPU scans its share of the port space, one IN and one OUT per port, sizes rotating.
uint32_t ports_done_by[kMaxCpus];
void scan_ports(uint32_t cpu) {
    const uint32_t stride = vcpu_count();
    for (uint32_t port = cpu; port <= 0xffff; port += stride) {
        const uint32_t size = kSizes[port % 3];
        const auto port16 = static_cast<uint16_t>(port);
        const uint32_t value = in_any(port16, size);
        (void)value;
        if (!overlaps_exit_port(port16, size)) out_any(port16, size, 0xfffffff1u);  // not RAM: a refused start request
        ++ports_done_by[cpu];
    }
    atomic_store(ports_done_by[cpu], ports_done_by[cpu] | 0x80000000u);
}

void pio_every_port() {
    start_all_aps(scan_ports);
    scan_ports(0);
    uint32_t total = 0;
    for (uint32_t cpu = 0; cpu < vcpu_count(); ++cpu) {
        spin_until([&] { return (atomic_load(ports_done_by[cpu]) & 0x80000000u) != 0; });
        total += ports_done_by[cpu] & 0x7fffffffu;
    }
    reset_console();
    check(total == 0x10000, "%u ports scanned, expected 65536", uint64_t{total});
}

// String I/O with counts 1..3, with and without rep, forwards and backwards, to the hypercall
// ports (which must treat none of it as a hypercall), an unclaimed port and the UART.
void pio_string_tiny() {
    constexpr uint16_t kPorts[] = {0x00e0, 0x00e4, 0x00e8, kUnclaimedPort, kUartFirst};
    alignas(16) static uint8_t source[64];
    alignas(16) static uint8_t destination[64];
    for (size_t i = 0; i < sizeof source; ++i) source[i] = static_cast<uint8_t>('a' + i % 26);
    for (uint16_t port : kPorts) {
        for (uint32_t size : kSizes) {
            for (uint64_t count = 1; count <= 3; ++count) {
                for (bool backwards : {false, true}) {
                    const uint64_t bytes = count * size;
                    const auto start = reinterpret_cast<uint64_t>(backwards ? source + 32 : source + 8);
                    StringIoResult r = outs(port, size, reinterpret_cast<const void*>(start), count, Repeat::kRep, backwards);
                    const uint64_t expected = backwards ? start - bytes : start + bytes;
                    check(r.fault == kNoFault && r.remaining == 0 && r.pointer == expected,
                          "rep outs%u count %u%s to port %x: RCX %x, RSI advanced by %x (fault %x)", uint64_t{size}, count,
                          backwards ? " backwards" : "", uint64_t{port}, r.remaining, r.pointer - start, uint64_t{r.fault});
                    r = outs(port, size, reinterpret_cast<const void*>(start), count, Repeat::kNone, backwards);
                    check(r.remaining == count && r.pointer == (backwards ? start - size : start + size),
                          "outs%u (no rep) to port %x: RCX %x, RSI moved by %x", uint64_t{size}, uint64_t{port}, r.remaining,
                          r.pointer - start);
                    if (is_uart(port)) continue;  // the UART's receive register is not all-ones
                    memset(destination, 0x11, sizeof destination);
                    uint8_t* first = backwards ? destination + 32 - (count - 1) * size : destination + 8;
                    uint8_t* begin = backwards ? destination + 32 : destination + 8;
                    r = ins(port, size, begin, count, Repeat::kRep, backwards);
                    bool filled = true;
                    for (uint64_t i = 0; i < bytes; ++i) filled &= first[i] == 0xff;
                    check(filled && first[-1] == 0x11 && first[bytes] == 0x11 && r.remaining == 0,
                          "rep ins%u count %u%s from port %x: wrong bytes or RCX %x", uint64_t{size}, count,
                          backwards ? " backwards" : "", uint64_t{port}, r.remaining);
                }
            }
        }
    }
    say("a newline for the console after the UART bytes");
}

// Huge counts. KVM batches INS into page-sized exits but hands OUTS to the VMM one element per
// exit, so the OUTS here start a few pages before the end of RAM: every huge count runs into it
// and stops there with a page fault, exactly at the end of RAM.
void pio_string_huge() {
    const Scratch scratch = scratch_memory();
    auto* buffer = reinterpret_cast<uint8_t*>(scratch.base);
    constexpr uint64_t kMiB = 1 << 20;
    StringIoResult r = ins(0x00e0, 4, buffer, kMiB / 4);
    check(r.remaining == 0 && buffer[0] == 0xff && buffer[kMiB - 1] == 0xff, "rep insl of 1 MiB from port 0xe0: RCX %x",
          r.remaining);

    const uint64_t ram_end = ram_end_below_hole();
    const uint64_t three_mib_before_end = ram_end - 3 * kMiB;
    r = ins(kUnclaimedPort, 1, reinterpret_cast<void*>(three_mib_before_end), uint64_t{1} << 40);
    check(r.fault == 14 && r.pointer == ram_end, "rep insb of 2^40 bytes from %x: fault %x at %x (RAM ends at %x)",
          three_mib_before_end, uint64_t{r.fault}, r.pointer, ram_end);
    const struct {
        uint16_t port;
        uint32_t size;
        uint64_t count;
    } outs_to_the_end[] = {{kUnclaimedPort, 4, uint64_t{1} << 40}, {0x00e4, 2, uint64_t{1} << 63}, {0x00e8, 1, ~uint64_t{0}}};
    for (const auto& run : outs_to_the_end) {
        const uint64_t start = ram_end - 1024 * run.size;
        r = outs(run.port, run.size, reinterpret_cast<void*>(start), run.count);
        check(r.fault == 14 && r.pointer == ram_end && r.remaining == run.count - 1024,
              "rep outs%u of %x elements to port %x: fault %x at %x, RCX %x", uint64_t{run.size}, run.count,
              uint64_t{run.port}, uint64_t{r.fault}, r.pointer, r.remaining);
    }
    // Into the MMIO hole: every element is a PIO exit and an MMIO exit.
    r = ins(kUnclaimedPort, 4, reinterpret_cast<void*>(0xd0000000ull), 256);
    check(r.remaining == 0 && r.fault == kNoFault, "rep insl into the MMIO hole: RCX %x, fault %x", r.remaining, uint64_t{r.fault});
}

const Case kCases[] = {
    {"pio-sizes", pio_sizes},
    {"pio-every-port", pio_every_port},
    {"pio-string-tiny", pio_string_tiny},
    {"pio-string-huge", pio_string_huge},
};

}  // namespace

const CaseGroup kPioCases = group(kCases);

}  // namespace hostile
