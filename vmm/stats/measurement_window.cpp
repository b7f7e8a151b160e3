#include "stats/measurement_window.h"

#include <algorithm>

namespace hvkvm::vmm {

std::vector<KvmStat> counter_difference(const std::vector<KvmStat>& after, const std::vector<KvmStat>& before) {
    std::vector<KvmStat> result;
    result.reserve(after.size());
    for (const auto& stat : after) {
        auto it = std::find_if(before.begin(), before.end(), [&](const KvmStat& s) { return s.name == stat.name; });
        const uint64_t earlier = it == before.end() ? 0 : it->value;
        result.push_back({stat.name, stat.value >= earlier ? stat.value - earlier : 0});
    }
    return result;
}

void MeasurementWindow::open(std::vector<KvmStat> counters, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    opened_ = Opened{std::move(counters), now};
}

bool MeasurementWindow::close(const std::vector<KvmStat>& counters, Clock::time_point now) {
    std::lock_guard lock(mutex_);
    if (!opened_) return false;
    const double ms = std::chrono::duration<double, std::milli>(now - opened_->time).count();
    const uint32_t windows = closed_ ? closed_->windows + 1 : 1;
    closed_ = Result{ms, counter_difference(counters, opened_->counters), windows};
    opened_.reset();
    return true;
}

std::optional<MeasurementWindow::Result> MeasurementWindow::last() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

}  // namespace hvkvm::vmm
