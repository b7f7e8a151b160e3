#include "stats/run_report.h"

#include <fmt/format.h>

namespace hvkvm::vmm {
namespace {

void print_counters(std::FILE* out, const std::vector<KvmStat>& counters) {
    std::string line;
    for (const auto& counter : counters) {
        if (counter.value == 0) continue;
        std::string item = fmt::format("{}={}", counter.name, counter.value);
        if (!line.empty() && line.size() + item.size() + 1 > 96) {
            fmt::print(out, "  {}\n", line);
            line.clear();
        }
        line += (line.empty() ? "" : " ") + item;
    }
    if (!line.empty()) fmt::print(out, "  {}\n", line);
}

}  // namespace

void print_run_report(const RunReport& report, std::FILE* out) {
    fmt::print(out, "--- boot timeline (ms since VMM start; source: vmm clock, guest milestone exit, guest TSC)\n");
    for (const auto& entry : report.timeline) {
        if (entry.valid) fmt::print(out, "  {:>9.3f}  {:<40} [{}]\n", entry.ms, entry.label, entry.source);
        else fmt::print(out, "  {:>9}  {:<40} [{}: the guest's stamp lies outside the run]\n", "invalid", entry.label, entry.source);
    }
    if (report.guest_main_ms)
        fmt::print(out, "guest main reached {:.1f} ms after VMM start (guest platform: {})\n", *report.guest_main_ms,
                   report.guest_platform);
    else
        fmt::print(out, "guest main was not reached\n");

    uint64_t total = 0;
    for (const auto& [reason, count] : report.vmm_exit_counts) total += count;
    fmt::print(out, "--- exits handled by the VMM, all vCPUs: {}\n", total);
    for (const auto& [reason, count] : report.vmm_exit_counts) fmt::print(out, "  {:>10}  {}\n", count, reason);

    if (!report.hypercalls.empty()) {
        fmt::print(out, "--- hypercalls by code\n");
        for (const auto& [name, count] : report.hypercalls) fmt::print(out, "  {:>10}  {}\n", count, name);
    }
    if (!report.devices.empty()) {
        fmt::print(out, "--- devices\n");
        for (const auto& [device, line] : report.devices) fmt::print(out, "  {:<20}  {}\n", device, line);
    }
    if (!report.numa.empty()) {
        fmt::print(out, "--- virtual NUMA\n");
        for (const auto& line : report.numa) fmt::print(out, "  {}\n", line);
    }
    fmt::print(out, "--- KVM counters (KVM_GET_STATS_FD), all vCPUs\n");
    print_counters(out, report.kvm_vcpu_counters);
    fmt::print(out, "--- KVM counters (KVM_GET_STATS_FD), VM\n");
    print_counters(out, report.kvm_vm_counters);
    if (const auto& window = report.measurement_window) {
        fmt::print(out, "--- KVM counters in the guest's measurement window ({:.3f} ms, the last of {} closed), all vCPUs\n",
                   window->milliseconds, window->windows);
        print_counters(out, window->counters);
    }
}

}  // namespace hvkvm::vmm
