// The data pattern the storage tests write and check: every 8-byte word of a sector a function
// of (seed, sector, word), so that a sector read back proves both its content and that it landed
// at the right address. Header-only and freestanding: the host's image checker
// (tests/integration/disk_pattern_tool.cpp) includes the same function.
#pragma once

#include <stdint.h>

namespace hvkvm::disk_pattern {

inline constexpr uint32_t kSectorBytes = 512;
inline constexpr uint32_t kWordsPerSector = kSectorBytes / 8;

// splitmix64 of the word's position.
constexpr uint64_t word(uint64_t seed, uint64_t sector, uint32_t index) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + sector * kWordsPerSector + index + 1;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Little-endian words, as both x86 sides store them.
inline void fill_sector(uint8_t* bytes, uint64_t seed, uint64_t sector) {
    for (uint32_t i = 0; i < kWordsPerSector; ++i) {
        const uint64_t value = word(seed, sector, i);
        for (uint32_t b = 0; b < 8; ++b) bytes[8 * i + b] = static_cast<uint8_t>(value >> (8 * b));
    }
}

inline bool sector_matches(const uint8_t* bytes, uint64_t seed, uint64_t sector) {
    for (uint32_t i = 0; i < kWordsPerSector; ++i) {
        const uint64_t value = word(seed, sector, i);
        for (uint32_t b = 0; b < 8; ++b)
            if (bytes[8 * i + b] != static_cast<uint8_t>(value >> (8 * b))) return false;
    }
    return true;
}

static_assert(word(1, 0, 0) != word(1, 0, 1) && word(1, 0, 0) != word(2, 0, 0));

}  // namespace hvkvm::disk_pattern
