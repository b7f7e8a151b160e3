#include "kernel/host_interface.h"

#include "arch/x86_64/cpu.h"
#include "hvkvm/abi/devices.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest {
namespace {

// Shared by all CPUs: set by the first CPU that reports a crash.
bool crash_record_claimed;

}  // namespace

abi::GuestReport& guest_report() { return *reinterpret_cast<abi::GuestReport*>(abi::kGuestReportGpa); }

void boot_phase_reached(abi::BootPhase phase) {
    abi::GuestReport& report = guest_report();
    report.phase_tsc[static_cast<uint32_t>(phase)] = x86::rdtsc();
    report.magic = abi::kGuestReportMagic;
    x86::outb(abi::kPostCodePort, static_cast<uint8_t>(phase));  // how far boot came, should it hang
}

void boot_milestone(abi::BootPhase phase) {
    boot_phase_reached(phase);
    x86::outl(abi::kBootMilestonePort, static_cast<uint32_t>(phase));
}

void open_measurement_window() { x86::outl(abi::kStatsWindowPort, static_cast<uint32_t>(abi::StatsWindowCommand::kOpen)); }

void close_measurement_window() { x86::outl(abi::kStatsWindowPort, static_cast<uint32_t>(abi::StatsWindowCommand::kClose)); }

void report_platform(abi::GuestPlatform platform) { guest_report().platform = static_cast<uint32_t>(platform); }

bool claim_crash_record() { return !__atomic_exchange_n(&crash_record_claimed, true, __ATOMIC_ACQ_REL); }

namespace {

// The per-node allocation counters, for the VMM's end-of-run report.
void report_numa_counters() {
    abi::GuestReport& report = guest_report();
    const uint32_t nodes = mm::node_count();
    for (uint32_t node = 0; node < nodes; ++node) {
        const mm::NodeStats stats = mm::node_stats(node);
        report.numa_nodes[node] = abi::NumaNodeCounters{stats.hit,         stats.miss,          stats.foreign,
                                                        stats.local,       stats.other,         stats.migrated_in,
                                                        stats.managed_pages, stats.free_pages};
    }
    report.numa_node_count = nodes;
}

}  // namespace

void exit_to_vmm(abi::GuestExitCode code) {
    // Not after a crash: the allocator's state may be what went wrong.
    if (code != abi::GuestExitCode::kCrash) report_numa_counters();
    x86::outl(abi::kDebugExitPort, static_cast<uint32_t>(code));
    x86::halt_forever();  // the VMM stops every vCPU; nothing runs after the exit port write
}

}  // namespace hvkvm::guest
