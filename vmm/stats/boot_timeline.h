// Boot timeline: host-clock times of VMM milestones and guest boot phases, reported in ms since
// VMM start. Milestone phases (guest entry, kernel main) are timed by the VMM itself at the
// guest's milestone exit; the other phases are placed from the guest's TSC stamps relative to the
// kernel-main milestone, which is exact as long as the guest TSC runs at tsc_khz.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hvkvm/abi/boot.h"

namespace hvkvm::vmm {

class BootTimeline {
public:
    using Clock = std::chrono::steady_clock;

    explicit BootTimeline(Clock::time_point vmm_start) : vmm_start_(vmm_start) {}

    // A step of the VMM's own setup ("VM created", "guest RAM mapped", ...), in call order.
    void mark_vmm_step(const char* label);
    void mark_first_run() { set_once(first_run_, Clock::now()); }
    void mark_milestone(abi::BootPhase phase);  // called from the milestone exit
    void mark_guest_stop() { set_once(guest_stop_, Clock::now()); }

    // Milliseconds from VMM start to the milestone, if it was reached.
    std::optional<double> milestone_ms(abi::BootPhase phase) const;

    struct Entry {
        std::string label;
        double ms;
        const char* source;  // "vmm", "exit" (milestone exit), "tsc" (guest TSC stamp)
        bool valid = true;   // false: a guest TSC stamp that would lie outside the run (ms meaningless)
    };
    // All known events in time order. `phase_tsc` and `tsc_khz` come from the guest report, which
    // the guest can forge: a stamp placed before the first KVM_RUN or after the guest stopped is
    // listed last, as invalid.
    std::vector<Entry> entries(const std::array<uint64_t, abi::kBootPhaseCount>& phase_tsc,
                               uint64_t tsc_khz) const;

private:
    void set_once(std::optional<Clock::time_point>& slot, Clock::time_point when);
    double ms_since_start(Clock::time_point when) const;

    Clock::time_point vmm_start_;
    mutable std::mutex mutex_;
    std::vector<std::pair<const char*, Clock::time_point>> vmm_steps_;
    std::optional<Clock::time_point> first_run_;
    std::optional<Clock::time_point> guest_stop_;
    std::array<std::optional<Clock::time_point>, abi::kBootPhaseCount> milestones_{};
};

const char* boot_phase_name(abi::BootPhase phase);

}  // namespace hvkvm::vmm
