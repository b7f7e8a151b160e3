// What the fuzz targets share: one guest RAM for all inputs (creating a memfd per input would
// dominate the run), and ways to turn fuzzer bytes into guest addresses and guest memory contents
// that reach the interesting edges (page ends, the end of RAM, the MMIO hole) often.
#pragma once

#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstring>

#include "kvm/guest_memory.h"

namespace hvkvm::fuzz {

inline constexpr uint64_t kRamBytes = 2 << 20;  // small: every input starts from zeroed RAM

inline vmm::GuestMemory& guest_memory() {
    static vmm::GuestMemory memory = vmm::GuestMemory::create(vmm::MemoryLayout::for_ram(kRamBytes));
    return memory;
}

// Back to all zeroes, so that one input cannot influence the next.
inline void clear(vmm::GuestMemory& memory) { std::memset(memory.span(0, kRamBytes).data(), 0, kRamBytes); }

// A guest address: any 64-bit value, or one near a page end, the end of RAM or the MMIO hole.
inline uint64_t guest_address(FuzzedDataProvider& in, const vmm::GuestMemory& memory) {
    const uint64_t nudge = in.ConsumeIntegralInRange<uint64_t>(0, 16) - 8;
    switch (in.ConsumeIntegralInRange(0, 3)) {
    case 0: return in.ConsumeIntegral<uint64_t>();
    case 1: return (in.ConsumeIntegralInRange<uint64_t>(0, memory.size() / 4096) << 12) + nudge;
    case 2: return memory.size() + nudge - 8 * in.ConsumeIntegralInRange<uint64_t>(0, 64);
    default: return 0xc0000000ull + (in.ConsumeIntegral<uint32_t>() % 0x40000000u);
    }
}

// Copies up to 512 fuzzer bytes into guest RAM at a chosen address (clipped to RAM).
inline void write_guest_bytes(FuzzedDataProvider& in, vmm::GuestMemory& memory) {
    const uint64_t gpa = in.ConsumeIntegralInRange<uint64_t>(0, memory.size() - 1);
    const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 512));
    const uint64_t length = std::min<uint64_t>(bytes.size(), memory.size() - gpa);
    if (length) std::memcpy(memory.span(gpa, length).data(), bytes.data(), length);
}

}  // namespace hvkvm::fuzz
