#include "kernel/wall_clock.h"

#include "arch/x86_64/time.h"

namespace hvkvm::guest::time {
namespace {

// The part of `slew` absorbed after `elapsed` ns at kMaxSlewPpm.
int64_t absorbed(int64_t slew, uint64_t elapsed) {
    const uint64_t limit = elapsed / 1'000'000 * kMaxSlewPpm + (elapsed % 1'000'000) * kMaxSlewPpm / 1'000'000;
    const uint64_t magnitude = static_cast<uint64_t>(slew < 0 ? -slew : slew);
    const auto part = static_cast<int64_t>(magnitude < limit ? magnitude : limit);
    return slew < 0 ? -part : part;
}

WallClock kernel_clock;

}  // namespace

uint64_t WallClock::read_locked(uint64_t at_ns) const {
    if (!set_) return 0;
    const uint64_t elapsed = at_ns > base_mono_ ? at_ns - base_mono_ : 0;
    return base_wall_ + elapsed + static_cast<uint64_t>(absorbed(slew_, elapsed));
}

void WallClock::step_locked(uint64_t wall_ns, uint64_t at_ns) {
    stats_.last_error_ns = set_ ? static_cast<int64_t>(wall_ns - read_locked(at_ns)) : 0;
    set_ = true;
    base_mono_ = at_ns;
    base_wall_ = wall_ns;
    slew_ = 0;
    ++stats_.steps;
}

uint64_t WallClock::at(uint64_t at_ns) {
    IrqSpinLockGuard guard(lock_);
    return read_locked(at_ns);
}

bool WallClock::is_set() {
    IrqSpinLockGuard guard(lock_);
    return set_;
}

void WallClock::set(uint64_t wall_ns, uint64_t at_ns) {
    IrqSpinLockGuard guard(lock_);
    step_locked(wall_ns, at_ns);
}

WallClock::Correction WallClock::correct(uint64_t wall_ns, uint64_t at_ns) {
    IrqSpinLockGuard guard(lock_);
    if (!set_) {
        step_locked(wall_ns, at_ns);
        return Correction::kStepped;
    }
    const uint64_t shown = read_locked(at_ns);
    const auto error = static_cast<int64_t>(wall_ns - shown);
    if (error >= kStepThresholdNs || error <= -kStepThresholdNs) {
        step_locked(wall_ns, at_ns);
        return Correction::kStepped;
    }
    base_mono_ = at_ns;
    base_wall_ = shown;
    slew_ = error;
    stats_.last_error_ns = error;
    ++stats_.slews;
    return Correction::kSlewing;
}

WallClockStats WallClock::stats() {
    IrqSpinLockGuard guard(lock_);
    return stats_;
}

WallClock& kernel_wall_clock() { return kernel_clock; }

uint64_t wall_clock() { return kernel_clock.at(now_ns()); }

}  // namespace hvkvm::guest::time
