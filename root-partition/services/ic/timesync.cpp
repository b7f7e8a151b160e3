#include "services/ic/timesync.h"

#include <time.h>

namespace hvkvm::root::ic {
namespace {

uint64_t nanoseconds(clockid_t clock) {
    timespec now{};
    ::clock_gettime(clock, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace

TimeReading HostClocks::read() {
    // Read the two clocks back to back; the reference time is what the guest's MSR reads now.
    const uint64_t monotonic = nanoseconds(CLOCK_MONOTONIC);
    const uint64_t realtime = nanoseconds(CLOCK_REALTIME);
    return {realtime / 100 + wire::kUnixEpochIn1601Units, (monotonic - origin_ns_) / 100};
}

void TimeSyncService::on_ready(Clock::time_point now) {
    const TimeReading reading = clocks_.read();
    offset_ = static_cast<int64_t>(reading.parent_time - reading.reference_time);
    sync_due_ = !send_time(wire::kTimeSyncFlagSync, now);
    next_sample_ = now + kSamplePeriod;
    next_check_ = now + kStepCheckPeriod;
}

bool TimeSyncService::host_clock_stepped() {
    const TimeReading reading = clocks_.read();
    const auto offset = static_cast<int64_t>(reading.parent_time - reading.reference_time);
    const bool stepped = offset_ && (offset - *offset_ > kStepThreshold100ns || *offset_ - offset > kStepThreshold100ns);
    offset_ = offset;
    return stepped;
}

void TimeSyncService::on_periodic(Clock::time_point now) {
    next_check_ = now + kStepCheckPeriod;
    if (host_clock_stepped()) {
        ++steps_;
        sync_due_ = true;
    }
    if (sync_due_) {
        sync_due_ = !send_time(wire::kTimeSyncFlagSync, now);
        if (!sync_due_) next_sample_ = now + kSamplePeriod;
    } else if (now >= next_sample_ && send_time(wire::kTimeSyncFlagSample, now)) {
        next_sample_ = now + kSamplePeriod;
    }
}

bool TimeSyncService::send_time(uint8_t flags, Clock::time_point now) {
    if (!is_idle()) return false;
    // Read the clocks last, right before the message goes out.
    const TimeReading reading = clocks_.read();
    const wire::TimeSyncMessage message{reading.parent_time, reading.reference_time, flags, 0, 0, {}};
    if (!send_fixed_request(&message, sizeof message, now)) return false;
    ++(flags == wire::kTimeSyncFlagSync ? syncs_ : samples_);
    return true;
}

bool TimeSyncService::on_answer(const wire::Message&, Clock::time_point) {
    ++answered_;  // the guest echoes the message; the answer only ends the transaction
    return true;
}

void TimeSyncService::on_failed(const char*, Clock::time_point) {}

bool TimeSyncService::control(const nlohmann::json& request, ControlReply& reply, Clock::time_point) {
    if (request.value("command", "") != "timesync") return false;
    ControlReply answer = std::move(reply);
    nlohmann::json result = describe();
    result["ok"] = true;
    answer(std::move(result));
    return true;
}

nlohmann::json TimeSyncService::describe() const {
    nlohmann::json description = IcService::describe();
    description["syncs"] = syncs_;
    description["samples"] = samples_;
    description["host_clock_steps"] = steps_;
    description["answered"] = answered_;
    return description;
}

}  // namespace hvkvm::root::ic
