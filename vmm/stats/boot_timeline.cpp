#include "stats/boot_timeline.h"

#include <algorithm>

namespace hvkvm::vmm {

const char* boot_phase_name(abi::BootPhase phase) {
    switch (phase) {
    case abi::BootPhase::kGuestEntry: return "guest entry";
    case abi::BootPhase::kCpuConverted: return "vCPU 0 converted / descriptors loaded";
    case abi::BootPhase::kConsoleReady: return "console ready";
    case abi::BootPhase::kMemoryReady: return "memory manager ready";
    case abi::BootPhase::kInterruptsReady: return "interrupts and timers ready";
    case abi::BootPhase::kSchedulerReady: return "scheduler ready";
    case abi::BootPhase::kSecondaryCpusUp: return "all vCPUs online";
    case abi::BootPhase::kKernelMain: return "guest main";
    case abi::BootPhase::kCount: break;
    }
    return "unknown phase";
}

void BootTimeline::set_once(std::optional<Clock::time_point>& slot, Clock::time_point when) {
    std::lock_guard lock(mutex_);
    if (!slot) slot = when;
}

void BootTimeline::mark_vmm_step(const char* label) {
    std::lock_guard lock(mutex_);
    vmm_steps_.emplace_back(label, Clock::now());
}

void BootTimeline::mark_milestone(abi::BootPhase phase) {
    const auto index = static_cast<uint32_t>(phase);
    if (index < abi::kBootPhaseCount) set_once(milestones_[index], Clock::now());
}

double BootTimeline::ms_since_start(Clock::time_point when) const {
    return std::chrono::duration<double, std::milli>(when - vmm_start_).count();
}

std::optional<double> BootTimeline::milestone_ms(abi::BootPhase phase) const {
    std::lock_guard lock(mutex_);
    const auto& slot = milestones_[static_cast<uint32_t>(phase)];
    if (!slot) return std::nullopt;
    return ms_since_start(*slot);
}

std::vector<BootTimeline::Entry> BootTimeline::entries(
    const std::array<uint64_t, abi::kBootPhaseCount>& phase_tsc, uint64_t tsc_khz) const {
    std::lock_guard lock(mutex_);
    std::vector<Entry> result{{"vmm start", 0.0, "vmm"}};
    for (const auto& [label, when] : vmm_steps_) result.push_back({label, ms_since_start(when), "vmm"});
    if (first_run_) result.push_back({"first KVM_RUN", ms_since_start(*first_run_), "vmm"});

    const auto anchor_index = static_cast<uint32_t>(abi::BootPhase::kKernelMain);
    const auto& anchor = milestones_[anchor_index];
    const uint64_t anchor_tsc = phase_tsc[anchor_index];
    // The guest ran from the first KVM_RUN to its stop; its stamps can only lie in between.
    const double run_start = first_run_ ? ms_since_start(*first_run_) : 0.0;
    const double run_end = guest_stop_ ? ms_since_start(*guest_stop_) : ms_since_start(Clock::now());
    std::vector<Entry> invalid;
    for (uint32_t i = 0; i < abi::kBootPhaseCount; ++i) {
        const char* label = boot_phase_name(static_cast<abi::BootPhase>(i));
        if (milestones_[i]) {
            result.push_back({label, ms_since_start(*milestones_[i]), "exit"});
        } else if (anchor && anchor_tsc && phase_tsc[i] && tsc_khz) {
            const double delta_ms = (static_cast<double>(phase_tsc[i]) - static_cast<double>(anchor_tsc)) /
                                    static_cast<double>(tsc_khz);
            const double ms = ms_since_start(*anchor) + delta_ms;
            if (ms >= run_start && ms <= run_end) result.push_back({label, ms, "tsc"});
            else invalid.push_back({label, 0.0, "tsc", false});
        }
    }
    if (guest_stop_) result.push_back({"guest stop", ms_since_start(*guest_stop_), "vmm"});
    std::stable_sort(result.begin(), result.end(), [](const Entry& a, const Entry& b) { return a.ms < b.ms; });
    result.insert(result.end(), invalid.begin(), invalid.end());
    return result;
}

}  // namespace hvkvm::vmm
