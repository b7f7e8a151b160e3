// Time sync (version-4 messages): each message pairs the host's UTC clock with the partition
// reference time at which it was read. The guest reads the reference counter (TIME_REF_COUNT, the
// VMM's clock of the same origin) and the TSC clock back to back when the message arrives, adds
// the time the message spent in transit, and sets (SYNC) or corrects (SAMPLE) the kernel's wall
// clock (kernel/wall_clock.h). A sample older than kMaxAgeNs, or from the reference clock's
// future, is not applied: the transit time would be a guess.
#include "arch/x86_64/time.h"
#include "drivers/ic/ic_device.h"
#include "drivers/ic/services.h"
#include "hv/hypervisor.h"
#include "kernel/console.h"
#include "kernel/wall_clock.h"

namespace hvkvm::guest::ic {
namespace {

constexpr wire::Version kSupported[] = {{4, 0}};
constexpr uint64_t kMaxAgeNs = 1'000'000'000;
// Parent times past this (some 228 years after 1970) are refused: ns since 1970 must fit 64 bits.
constexpr uint64_t kMaxParentSinceEpoch = 1ull << 56;
ServiceState service_state{wire::kTimeSync, wire::list_of(kSupported)};

struct Counters {
    SpinLock lock;  // guards `stats`
    TimeSyncStats stats = {};
} counters;

void bump(uint64_t TimeSyncStats::*counter) {
    IrqSpinLockGuard guard(counters.lock);
    ++(counters.stats.*counter);
}

class TimeSyncDevice final : public IcDevice {
public:
    explicit TimeSyncDevice(vmbus::Device& device) : IcDevice(device, service_state, ic_channel_options()) {}

private:
    bool answer(const wire::Message& request, wire::Packet& response) override {
        wire::TimeSyncMessage message;
        if (wire::read_body(request, message) != wire::IcError::kNone) return false;
        apply(message);
        return wire::build_response(response, request.header, wire::kStatusSuccess, &message, sizeof message);
    }

    static void apply(const wire::TimeSyncMessage& message) {
        const uint64_t reference_now = hv::reference_counter_100ns();
        const uint64_t monotonic_now = time::now_ns();
        const bool sync = message.flags & wire::kTimeSyncFlagSync;
        if (message.parent_time < wire::kUnixEpochIn1601Units ||
            message.parent_time - wire::kUnixEpochIn1601Units > kMaxParentSinceEpoch ||
            message.reference_time > reference_now || reference_now - message.reference_time > kMaxAgeNs / 100) {
            bump(&TimeSyncStats::stale);
            return;
        }
        const uint64_t wall_ns = (message.parent_time - wire::kUnixEpochIn1601Units) * 100 +
                                 (reference_now - message.reference_time) * 100;
        time::WallClock& clock = time::kernel_wall_clock();
        const bool first = !clock.is_set();
        if (sync) clock.set(wall_ns, monotonic_now);
        else clock.correct(wall_ns, monotonic_now);
        bump(sync ? &TimeSyncStats::syncs : &TimeSyncStats::samples);
        if (first) {
            kprint("timesync: wall clock set to %lu.%09lu s since 1970 (UTC)\n", wall_ns / 1'000'000'000,
                   wall_ns % 1'000'000'000);
        }
    }
};

vmbus::Driver driver{"ic-timesync", wire::kTimeSync.interface_type, probe<TimeSyncDevice>, remove<TimeSyncDevice>, {}, false};

}  // namespace

vmbus::Driver& timesync_driver() { return driver; }
ServiceState& timesync_state() { return service_state; }

TimeSyncStats timesync_stats() {
    IrqSpinLockGuard guard(counters.lock);
    return counters.stats;
}

}  // namespace hvkvm::guest::ic
