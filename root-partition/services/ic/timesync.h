// The time-sync service (version 4 messages): the host's UTC wall clock (CLOCK_REALTIME) in 100 ns
// units since 1601, paired with the partition reference time at which it was read (the clock of
// the guest's TIME_REF_COUNT MSR), so the guest can account for the delay before it reads the
// message. A SYNC (set the clock) when the channel opens and after the host clock steps; a SAMPLE
// (correct it) every 5 s. A step is a change of the wall clock against the reference clock of
// more than 100 ms between two checks, once a second.
#pragma once

#include "services/ic/ic_service.h"

namespace hvkvm::root::ic {

struct TimeReading {
    uint64_t parent_time;     // 100 ns since 1601-01-01 UTC
    uint64_t reference_time;  // 100 ns since the partition's reference origin
};

// Where the readings come from (the process's clocks; tests substitute their own).
class TimeSource {
public:
    virtual TimeReading read() = 0;

protected:
    ~TimeSource() = default;
};

// CLOCK_REALTIME, and CLOCK_MONOTONIC since `reference_origin_ns` (the VMM's hypervisor's origin,
// handed over in the link hello).
class HostClocks final : public TimeSource {
public:
    explicit HostClocks(uint64_t reference_origin_ns) : origin_ns_(reference_origin_ns) {}
    TimeReading read() override;

private:
    uint64_t origin_ns_;
};

class TimeSyncService final : public IcService {
public:
    static constexpr Clock::duration kSamplePeriod = std::chrono::seconds(5);
    static constexpr Clock::duration kStepCheckPeriod = std::chrono::seconds(1);
    static constexpr int64_t kStepThreshold100ns = 1'000'000;  // 100 ms

    explicit TimeSyncService(TimeSource& clocks) : IcService(wire::kTimeSync), clocks_(clocks) {}

    bool control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) override;
    nlohmann::json describe() const override;

private:
    void on_ready(Clock::time_point now) override;
    bool on_answer(const wire::Message& answer, Clock::time_point now) override;
    void on_failed(const char* why, Clock::time_point now) override;
    std::optional<Clock::time_point> periodic_deadline() const override { return next_check_; }
    void on_periodic(Clock::time_point now) override;
    void on_closed() override { next_check_.reset(); }

    // Sends a SYNC or SAMPLE now if idle; false if it has to wait.
    bool send_time(uint8_t flags, Clock::time_point now);
    bool host_clock_stepped();

    TimeSource& clocks_;
    std::optional<Clock::time_point> next_check_;
    Clock::time_point next_sample_{};
    std::optional<int64_t> offset_;  // parent_time - reference_time at the last check
    bool sync_due_ = false;
    uint64_t syncs_ = 0, samples_ = 0, steps_ = 0, answered_ = 0;
};

}  // namespace hvkvm::root::ic
