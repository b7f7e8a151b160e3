#include "init/kernel_main.h"

#include <stdarg.h>

#include "arch/x86_64/cpu.h"
#include "bench/io_bench.h"
#include "bench/numa_bench.h"
#include "bench/spinlock_bench.h"
#include "bench/vmbus_echo_bench.h"
#include "drivers/ata.h"
#include "drivers/ic/ic.h"
#include "drivers/storvsc/storvsc.h"
#include "drivers/vmbus/vmbus.h"
#include "fs/txfs/boot_commands.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/cmdline.h"
#include "kernel/console.h"
#include "kernel/diagnostics.h"
#include "kernel/host_interface.h"
#include "kernel/sync/cross_call.h"
#include "kernel/test/ktest.h"
#include "kernel/version.h"
#include "lib/format.h"
#include "lib/string.h"
#include "mm/node_topology.h"

namespace hvkvm::guest {
namespace {

void print_banner(const abi::BootInfo& boot_info, const Cmdline& cmdline) {
    const platform::Kind kind = platform::kind();
    // The vCPUs counted by the kernel itself (each marked itself online), not the configured number.
    kprint("hvkvm guest kernel %s on %s platform (%s), %u vCPU(s) online, %lu MiB RAM\n", kKernelVersion,
           platform::name(kind),
           kind == platform::Kind::kPvm ? "converted: native-speed supervisor mode" : "unconverted",
           smp::online_count(), boot_info.memory_bytes >> 20);
    if (!cmdline.text().empty())
        kprint("cmdline: %.*s\n", static_cast<int>(cmdline.text().size()), cmdline.text().data());
}

// Text built piece by piece in a fixed buffer; what does not fit is cut off.
template <size_t N>
struct Line {
    char text[N] = {};
    size_t length = 0;

    __attribute__((format(printf, 2, 3))) void append(const char* format_string, ...) {
        va_list arguments;
        va_start(arguments, format_string);
        length += format_v(text + length, N - length, format_string, arguments);
        va_end(arguments);
        if (length > N - 1) length = N - 1;
    }
};

// "0-3,6" (or "none").
template <size_t N>
void append_cpus(Line<N>& line, numa::CpuSet cpus) {
    if (cpus.empty()) line.append("none");
    bool first = true;
    for (uint32_t cpu = 0; cpu < numa::kMaxCpus; ++cpu) {
        if (!cpus.contains(cpu)) continue;
        uint32_t last = cpu;
        while (last + 1 < numa::kMaxCpus && cpus.contains(last + 1)) ++last;
        if (last == cpu) line.append("%s%u", first ? "" : ",", cpu);
        else line.append("%s%u-%u", first ? "" : ",", cpu, last);
        first = false;
        cpu = last;
    }
}

// With two or more nodes, one line per node: its CPUs, memory, distances and fallback order.
void print_numa_topology() {
    const uint32_t nodes = mm::node_count();
    if (nodes < 2) return;
    kprint("numa: %u nodes (ACPI SRAT, SLIT)\n", nodes);
    for (uint32_t node = 0; node < nodes; ++node) {
        Line<256> line;
        line.append("numa: node %u: vCPUs ", node);
        append_cpus(line, mm::cpus_of_node(node));
        line.append(", %lu MiB, distances", mm::node_memory_bytes(node) >> 20);
        for (uint32_t to = 0; to < nodes; ++to) line.append(" %u", mm::node_distance(node, to));
        line.append(", fallback order");
        const numa::NodeOrder& fallback = mm::fallback_order(node);
        for (uint32_t i = 0; i < fallback.count; ++i) line.append(" %u", fallback.nodes[i]);
        kprint("%s\n", line.text);
    }
}

// The kernel's last act: leave VMBus the orderly way (the host closes its side), then report.
[[noreturn]] void finish(bool success) {
    ic::stop();
    vmbus::stop();
    exit_to_vmm(success ? abi::GuestExitCode::kSuccess : abi::GuestExitCode::kFailure);
}

constexpr size_t kMaxValueChars = ic::wire::kKvpMaxValueUnits;
// Bounds of the numeric command-line options (docs/config.md).
constexpr uint64_t kMaxHeartbeatSilenceSeconds = 3600;
constexpr uint64_t kMaxGuestLogFlood = 1'000'000;
constexpr uint64_t kMaxPollMicroseconds = 1'000'000;

// `key=N` as a decimal number up to `max`: true and `value` set when the command line has it; a
// value that is not such a number is ignored, with a line on the console saying so.
bool cmdline_number(const Cmdline& cmdline, StringView key, uint64_t max, uint64_t& value) {
    bool found = false;
    const StringView text = cmdline.value(key, &found);
    if (!found) return false;
    uint64_t number = 0;
    if (parse_decimal(text, number) && number <= max) {
        value = number;
        return true;
    }
    kprint("%.*s=%.*s: not a decimal number up to %lu: ignored\n", static_cast<int>(key.size()), key.data(),
           static_cast<int>(text.size()), text.data(), max);
    return false;
}

// The integration services, as the command line configures them: shutdown=ignore (accept the
// host's shutdown request but carry on), guest_log=console (every console line to the host's log),
// heartbeat_silence=S (a test of the host: leave S seconds of heartbeats unanswered).
void start_integration_services(const Cmdline& cmdline) {
    vmbus::Bus* bus = vmbus::bus();
    if (!bus) return;
    ic::IcOptions options;
    options.shutdown = cmdline.value("shutdown") == "ignore" ? ic::ShutdownPolicy::kIgnore : ic::ShutdownPolicy::kObey;
    options.mirror_console = cmdline.value("guest_log") == "console";
    uint64_t silence_seconds = 0;
    cmdline_number(cmdline, "heartbeat_silence", kMaxHeartbeatSilenceSeconds, silence_seconds);
    options.heartbeat_silence_ns = silence_seconds * 1'000'000'000;
    ic::start(*bus, options);
    // The guest pool's first pair: what this kernel was asked to do (cut to what a value holds).
    char text[kMaxValueChars + 1];
    const size_t length = cmdline.text().size() < kMaxValueChars ? cmdline.text().size() : kMaxValueChars;
    memcpy(text, cmdline.text().data(), length);
    text[length] = '\0';
    ic::kvp_publish("KernelCommandLine", text);
}

// guest_log_flood=N: N log lines as fast as the kernel can queue them (a test of the host's
// rate limits: most are dropped, and counted, on the way).
void flood_guest_log(const Cmdline& cmdline) {
    uint64_t count = 0;
    if (!cmdline_number(cmdline, "guest_log_flood", kMaxGuestLogFlood, count)) return;
    for (uint64_t i = 0; i < count; ++i) ic::guest_log_printf("flood line %lu of %lu", i + 1, count);
    kprint("guest_log_flood: %lu lines queued\n", count);
}

// serve: run the integration services until the host asks for a shutdown; then stop in order.
[[noreturn]] void serve() {
    if (!ic::is_started()) {
        kprint("serve: no VMBus connection, so no host to serve: exiting\n");
        finish(false);
    }
    kprint("serve: running until the host asks for a shutdown\n");
    ic::guest_log_printf("serving");
    const ic::ShutdownRequest request = ic::wait_for_shutdown();
    kprint("guest shutdown: requested by the host (reason %#x, deadline %u s); stopping\n", request.reason,
           request.timeout_seconds);
    finish(true);
}

// The IDE channel's drives become block devices; `ata=pio` or `ata=dma` (the default) says how
// they move data.
void probe_storage(const Cmdline& cmdline) {
    bool found = false;
    const StringView mode = cmdline.value("ata", &found);
    if (found && !(mode == "pio" || mode == "dma"))
        kprint("ata=%.*s: unknown mode (pio or dma): using dma\n", static_cast<int>(mode.size()), mode.data());
    ata::probe(found && mode == "pio" ? ata::Mode::kPio : ata::Mode::kDma);
    // The VMBus disks come with the bus (vmbus::start); how long their waiters poll:
    uint64_t poll_us = 0;
    if (cmdline_number(cmdline, "storvsc.poll_us", kMaxPollMicroseconds, poll_us)) storvsc::set_poll_ns(poll_us * 1000);
}

}  // namespace

void kernel_main(const abi::BootInfo& boot_info) {
    boot_milestone(abi::BootPhase::kKernelMain);
    const Cmdline cmdline(StringView(reinterpret_cast<const char*>(boot_info.cmdline_gpa), boot_info.cmdline_length));
    print_banner(boot_info, cmdline);
    print_numa_topology();
    probe_storage(cmdline);

    bool found = false;
    const StringView crash_kind = cmdline.value("crash", &found);
    if (found) trigger_crash(crash_kind);  // does not return
    vmbus::start();  // without a VMBus host the kernel carries on without it
    start_integration_services(cmdline);
    flood_guest_log(cmdline);
    if (cmdline.has("txfs")) finish(fs::run_txfs_boot_commands(cmdline));
    const StringView test_glob = cmdline.value("test", &found);
    if (found) finish(ktest::run_matching(test_glob.data(), static_cast<uint32_t>(test_glob.size())));
    const StringView bench = cmdline.value("bench", &found);
    if (found) {
        bool ok = false;
        if (bench == "spinlock") ok = bench::run_spinlock_benchmark();
        else if (bench == "numa") ok = bench::run_numa_benchmark();
        else if (bench == "vmbus_echo") ok = bench::run_vmbus_echo_benchmark(cmdline.value("vmbus_echo_only"));
        else if (bench == "io") ok = bench::run_io_benchmark(cmdline);
        else kprint("bench=%.*s: unknown benchmark (known: spinlock, numa, vmbus_echo, io)\n", static_cast<int>(bench.size()), bench.data());
        finish(ok);
    }
    if (cmdline.has("hang")) {
        // For tests of the VMM's stop path: a vCPU halted with interrupts off never wakes.
        kprint("hang: halting with interrupts disabled until the VMM stops the VM\n");
        platform::disable_interrupts();
        x86::halt_forever();
    }
    if (cmdline.has("selftest")) finish(run_selftest());
    if (cmdline.has("serve")) serve();

    kprint("nothing more to do: exiting\n");
    finish(true);
}

}  // namespace hvkvm::guest
