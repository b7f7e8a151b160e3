// Alignment and overflow-checked range arithmetic, for both the VMM and the guest. Every range a
// guest or a config supplies (GPA + length, port + count, base + size) goes through these, so a
// wrap-around past the top of the address space is refused instead of silently becoming small.
#pragma once

#include <stdint.h>

namespace hvkvm::abi {

// `alignment` must be a power of two.
inline constexpr uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }
inline constexpr uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) & ~(alignment - 1);
}
inline constexpr bool is_aligned(uint64_t value, uint64_t alignment) { return (value & (alignment - 1)) == 0; }

// One past the last byte of [base, base + length), or false if that wraps past 2^64.
inline constexpr bool range_end(uint64_t base, uint64_t length, uint64_t& end) {
    return !__builtin_add_overflow(base, length, &end);
}

// True if [base, base + length) lies inside [outer_base, outer_base + outer_length), with no
// overflow anywhere. An empty range fits anywhere inside (or at the end of) the outer one.
inline constexpr bool range_within(uint64_t base, uint64_t length, uint64_t outer_base, uint64_t outer_length) {
    uint64_t end = 0, outer_end = 0;
    if (!range_end(base, length, end) || !range_end(outer_base, outer_length, outer_end)) return false;
    return base >= outer_base && end <= outer_end;
}

static_assert(align_up(4097, 4096) == 8192 && align_up(4096, 4096) == 4096 && align_down(8191, 4096) == 4096);
static_assert(range_within(0xff8, 8, 0, 0x1000) && !range_within(0xff9, 8, 0, 0x1000));
static_assert(!range_within(~0ull, 2, 0, ~0ull));

}  // namespace hvkvm::abi
