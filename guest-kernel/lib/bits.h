// Bit operations that do not need the compiler's support library (libgcc is not linked).
#pragma once

#include <stdint.h>

namespace hvkvm::guest {

constexpr uint32_t popcount64(uint64_t value) {
    value = value - ((value >> 1) & 0x5555555555555555ull);
    value = (value & 0x3333333333333333ull) + ((value >> 2) & 0x3333333333333333ull);
    value = (value + (value >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return static_cast<uint32_t>((value * 0x0101010101010101ull) >> 56);
}
static_assert(popcount64(0) == 0 && popcount64(~0ull) == 64 && popcount64(0x8000000000000101ull) == 3);

}  // namespace hvkvm::guest
