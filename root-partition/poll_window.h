// What a VSP does after draining its incoming ring, before it unmasks the ring and sleeps: it keeps
// the ring masked and polls it for a short, bounded window, as busy-polling hosts do (KVM's halt
// polling, OpenVMM's and Hyper-V's VSPs polling a busy queue). A guest that sends its next request
// within the window (a queue-depth-1 stream: answer, next request, answer...) finds the ring still
// masked, so it does not signal: no KVM exit per message. A window that ends empty costs its length
// once per burst; an idle channel then sleeps on its eventfd and costs nothing.
#pragma once

#include <chrono>
#include <cstdint>

#include "vmbus/ring/ring_reader.h"

namespace hvkvm::root {

class PollWindow {
public:
    using Clock = std::chrono::steady_clock;

    explicit PollWindow(std::chrono::nanoseconds length) : length_(length) {}

    // Polls `reader` (masked by the caller) until it has data (true: a hit) or the window ends
    // (false: a miss). A zero-length window looks once.
    bool wait_for_data(vmbus::ring::RingReader& reader) {
        const Clock::time_point end = Clock::now() + length_;
        for (;;) {
            if (reader.has_data()) {
                ++hits_;
                return true;
            }
            if (Clock::now() >= end) break;
            __builtin_ia32_pause();  // a spinning hyperthread yields its core's resources
        }
        ++misses_;
        return false;
    }

    std::chrono::nanoseconds length() const { return length_; }
    uint64_t hits() const { return hits_; }
    uint64_t misses() const { return misses_; }

private:
    std::chrono::nanoseconds length_;
    uint64_t hits_ = 0;
    uint64_t misses_ = 0;
};

}  // namespace hvkvm::root
