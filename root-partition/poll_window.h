// What a VSP does after draining its incoming ring, before it unmasks the ring and sleeps: it keeps
// the ring masked and polls it for a short, bounded window, as busy-polling hosts do (KVM's halt
// polling, OpenVMM's and Hyper-V's VSPs polling a busy queue). A guest that sends its next request
// within the window (a queue-depth-1 stream: answer, next request, answer...) finds the ring still
// masked, so it does not signal: no KVM exit per message. An idle channel sleeps on its eventfd and
// costs nothing.
//
// A window that ends empty (a miss) backs off: the next `backoff` drains look once instead of
// polling, 1 after the first miss, and each further miss doubles it (up to kMaxBackoff drains); a
// hit ends it. Each skipped drain of a busy stream costs the guest a signal, so the first backoff
// is short: a stream that merely paused (a descheduled vCPU) polls again at once.
// Two reasons. The end of every burst is a miss, and a channel with sparse traffic should not pay a
// window per message. And when the host scheduler runs this process on the CPU of the vCPU that
// sends the requests — it wakes us there when the guest signals — polling cannot hit at all: the
// guest cannot run to send its next request until we stop, so every window would only add its
// length to the round trip. Backed off, the channel costs what it did without a window (one exit
// per request at queue depth 1) plus one probing window every kMaxBackoff drains, and it polls
// again as soon as a probe hits (the scheduler has put us on different CPUs).
#pragma once

#include <chrono>
#include <cstdint>

#include "vmbus/ring/ring_reader.h"

namespace hvkvm::root {

class PollWindow {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr uint32_t kFirstBackoff = 1;
    static constexpr uint32_t kMaxBackoff = 256;

    explicit PollWindow(std::chrono::nanoseconds length) : length_(length) {}

    // Polls `reader` (masked by the caller) until it has data (true: a hit) or the window ends
    // (false: a miss). Backing off, or with a zero-length window, it looks once (counted skipped).
    bool wait_for_data(vmbus::ring::RingReader& reader) {
        if (skip_ > 0 || length_.count() == 0) {
            if (skip_ > 0) --skip_;
            ++skipped_;
            return reader.has_data();
        }
        const Clock::time_point end = Clock::now() + length_;
        for (;;) {
            if (reader.has_data()) {
                ++hits_;
                backoff_ = 0;
                return true;
            }
            if (Clock::now() >= end) break;
            __builtin_ia32_pause();  // a spinning hyperthread yields its core's resources
        }
        ++misses_;
        backoff_ = backoff_ == 0 ? kFirstBackoff : (backoff_ >= kMaxBackoff / 2 ? kMaxBackoff : backoff_ * 2);
        skip_ = backoff_;
        return false;
    }

    std::chrono::nanoseconds length() const { return length_; }
    uint64_t hits() const { return hits_; }
    uint64_t misses() const { return misses_; }
    uint64_t skipped() const { return skipped_; }

private:
    std::chrono::nanoseconds length_;
    uint32_t backoff_ = 0;  // drains to skip after the latest miss (0: the last window hit)
    uint32_t skip_ = 0;     // drains still to skip
    uint64_t hits_ = 0;
    uint64_t misses_ = 0;
    uint64_t skipped_ = 0;
};

}  // namespace hvkvm::root
