// The end-of-run report on stderr: boot timeline, the VMM's exit counts by reason, and KVM's own
// counters. Collected by the Machine after every vCPU thread has joined.
#pragma once

#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "stats/boot_timeline.h"
#include "stats/kvm_stats.h"
#include "stats/measurement_window.h"

namespace hvkvm::vmm {

struct RunReport {
    std::vector<BootTimeline::Entry> timeline;
    std::optional<double> guest_main_ms;
    std::map<std::string, uint64_t> vmm_exit_counts;
    std::vector<KvmStat> kvm_vcpu_counters;  // summed over vCPUs
    std::vector<KvmStat> kvm_vm_counters;
    std::optional<MeasurementWindow::Result> measurement_window;  // the guest's last, if it closed one
    std::vector<std::pair<std::string, uint64_t>> hypercalls;
    std::vector<std::pair<std::string, std::string>> devices;  // (device, its report line)
    std::string guest_platform;
    std::vector<std::string> numa;  // host placement of RAM and vCPUs, the guest's per-node counters
};

void print_run_report(const RunReport& report, std::FILE* out);

}  // namespace hvkvm::vmm
