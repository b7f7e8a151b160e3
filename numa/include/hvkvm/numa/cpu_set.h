// A set of vCPU indexes (0..kMaxCpus-1) in one word. A vCPU's index is its APIC ID.
#pragma once

#include <stdint.h>

#include "hvkvm/numa/limits.h"

namespace hvkvm::numa {

class CpuSet {
public:
    constexpr CpuSet() = default;
    static constexpr CpuSet from_bits(uint64_t bits) { return CpuSet(bits); }
    // {first, first + 1, ..., first + count - 1}; the range must lie within kMaxCpus.
    static constexpr CpuSet range(uint32_t first, uint32_t count) {
        const uint64_t ones = count >= 64 ? ~uint64_t{0} : (uint64_t{1} << count) - 1;
        return CpuSet(ones << first);
    }

    constexpr void add(uint32_t cpu) { bits_ |= uint64_t{1} << cpu; }
    constexpr bool contains(uint32_t cpu) const { return cpu < 64 && ((bits_ >> cpu) & 1) != 0; }
    constexpr bool empty() const { return bits_ == 0; }
    constexpr uint64_t bits() const { return bits_; }
    constexpr uint32_t count() const {
        uint32_t total = 0;
        for (uint64_t rest = bits_; rest != 0; rest &= rest - 1) ++total;
        return total;
    }
    // Lowest member, or kMaxCpus if empty.
    constexpr uint32_t first() const {
        for (uint32_t cpu = 0; cpu < 64; ++cpu)
            if (contains(cpu)) return cpu;
        return kMaxCpus;
    }
    constexpr CpuSet operator&(CpuSet other) const { return CpuSet(bits_ & other.bits_); }
    constexpr CpuSet operator|(CpuSet other) const { return CpuSet(bits_ | other.bits_); }
    constexpr bool operator==(const CpuSet&) const = default;

private:
    constexpr explicit CpuSet(uint64_t bits) : bits_(bits) {}
    uint64_t bits_ = 0;
};

static_assert(CpuSet::range(0, 64).count() == 64 && CpuSet::range(3, 2).bits() == 0x18);
static_assert(CpuSet::range(5, 3).first() == 5 && CpuSet().first() == kMaxCpus);

}  // namespace hvkvm::numa
