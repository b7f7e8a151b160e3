// A small, fast pseudo-random generator (xorshift64*) for tests and randomised policies.
// Not for anything that needs unpredictability.
#pragma once

#include <stdint.h>

namespace hvkvm::guest {

class Random {
public:
    explicit Random(uint64_t seed) : state_(seed ? seed : 0x9e3779b97f4a7c15ull) {}
    uint64_t next() {
        state_ ^= state_ >> 12;
        state_ ^= state_ << 25;
        state_ ^= state_ >> 27;
        return state_ * 0x2545f4914f6cdd1dull;
    }
    // Uniform enough in [0, bound) for test purposes (bound > 0).
    uint64_t below(uint64_t bound) { return next() % bound; }

private:
    uint64_t state_;
};

}  // namespace hvkvm::guest
