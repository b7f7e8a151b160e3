// The data pattern the storage tests write and check: every 8-byte word of a sector a function
// of (seed, sector, word), so that a sector read back proves both its content and that it landed
// at the right address. A test image starts with a PatternHeader saying which regions hold (or
// are to receive) which pattern. Header-only and freestanding: the host's image tool
// (tests/integration/disk_pattern_tool.cpp) includes the same code.
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

// Sector 0 of a test image: regions as [first, first + sectors).
struct PatternHeader {
    char magic[16];          // kPatternMagic
    uint64_t host_seed;      // written by the host before the run; the guest reads and checks it
    uint64_t host_first;
    uint64_t host_sectors;
    uint64_t guest_seed;     // written by the guest; the host checks it after the run
    uint64_t guest_first;
    uint64_t guest_sectors;
    uint64_t flags;          // PatternFlags
};
inline constexpr char kPatternMagic[16] = "hvkvm-pattern-1";
enum PatternFlags : uint64_t {
    // The flush-then-kill scenario: the guest writes its region, flushes, says so on the console
    // and waits to be killed; the host then checks the region.
    kFlushKillScenario = 1u << 0,
    // The VM is given this image read-only: the guest's writes must be refused.
    kExpectReadOnly = 1u << 1,
    // An earlier run wrote the guest region and the host found it intact (disk-pattern
    // mark-written): this run reads it back, possibly through the other bus.
    kGuestRegionWritten = 1u << 2,
    // The host fails one of the guest's writes (config debug.disk_fault on this disk, write, nth
    // kFaultWrite): the guest writes its region in kFaultChunks pieces, sees exactly that one fail
    // with the right sense, writes it again, and the host then finds the whole region intact.
    kFaultScenario = 1u << 3,
};
inline constexpr uint32_t kFaultChunks = 16;
inline constexpr uint32_t kFaultWrite = 3;
static_assert(sizeof(PatternHeader) == 72 && sizeof(PatternHeader) <= kSectorBytes);
static_assert(__builtin_offsetof(PatternHeader, host_seed) == 16 && __builtin_offsetof(PatternHeader, flags) == 64);

inline bool header_valid(const PatternHeader& header) {
    for (uint32_t i = 0; i < sizeof header.magic; ++i)
        if (header.magic[i] != kPatternMagic[i]) return false;
    return true;
}

}  // namespace hvkvm::disk_pattern
