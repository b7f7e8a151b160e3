// GPA range lists: how Hyper-V names guest-physical memory outside a ring, both in GPA-direct ring
// packets and in GPADLs. A list is a run of u64 words; each range is one header word
// {u32 byte_count; u32 byte_offset} followed by one PFN per 4 KiB page its bytes touch
// (Linux include/linux/hyperv.h `struct gpa_range`, OpenVMM vmbus_ring/src/gparange.rs).
//
// Everything here works on words the caller has already copied out of shared memory: validate
// once, then walk the same words with GpaRangeCursor.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::vmbus {

inline constexpr uint32_t kHvPageSize = 4096;
inline constexpr uint32_t kHvPageShift = 12;

// The header word of one range, as it lies in memory (little-endian: byte_count is the low half).
struct GpaRangeHeader {
    uint32_t byte_count;   // bytes described; never 0
    uint32_t byte_offset;  // where they start in the first page; below 4096
};
static_assert(sizeof(GpaRangeHeader) == 8);
static_assert(offsetof(GpaRangeHeader, byte_count) == 0);
static_assert(offsetof(GpaRangeHeader, byte_offset) == 4);

// PFNs a range needs: the pages touched by [byte_offset, byte_offset + byte_count). 64-bit, so a
// hostile byte_count near 4 GiB cannot wrap.
constexpr uint64_t gpa_range_pfn_count(uint32_t byte_count, uint32_t byte_offset) {
    return (uint64_t{byte_offset} + byte_count + kHvPageSize - 1) >> kHvPageShift;
}
static_assert(gpa_range_pfn_count(1, 4095) == 1 && gpa_range_pfn_count(2, 4095) == 2);
static_assert(gpa_range_pfn_count(0xffffffffu, 4095) == 0x100001);

enum class GpaRangeError : uint8_t {
    kNone,
    kNoRanges,         // a range count of 0
    kTooManyRanges,    // more ranges claimed than the words could possibly hold (2 words each)
    kEmptyRange,       // byte_count 0
    kOffsetPastPage,   // byte_offset >= 4096
    kMissingPfns,      // the words end before the PFNs the range's size needs
};
const char* gpa_range_error_name(GpaRangeError error);

// One validated range: a view into the caller's words.
struct GpaRange {
    uint32_t byte_count;
    uint32_t byte_offset;
    const uint64_t* pfns;
    uint32_t pfn_count;
};

// Checks that `words[0, word_count)` starts with `range_count` well-formed ranges. On success sets
// `used_words` to the words they occupy (trailing words are allowed and ignored, as OpenVMM does).
GpaRangeError validate_gpa_ranges(const uint64_t* words, uint32_t word_count, uint32_t range_count,
                                  uint32_t& used_words);

// Walks ranges that validate_gpa_ranges() accepted. Walking unvalidated words is a bug.
class GpaRangeCursor {
public:
    GpaRangeCursor() = default;
    GpaRangeCursor(const uint64_t* words, uint32_t range_count) : words_(words), remaining_(range_count) {}

    // Fills `range` with the next range; false once all have been returned.
    bool next(GpaRange& range);

private:
    const uint64_t* words_ = nullptr;
    uint32_t remaining_ = 0;
};

// A validated list as stored words: what GPA-direct packets and completed GPADLs hand out.
struct GpaRangeList {
    const uint64_t* words = nullptr;
    uint32_t word_count = 0;
    uint32_t range_count = 0;

    GpaRangeCursor cursor() const { return GpaRangeCursor(words, range_count); }
    uint64_t total_bytes() const;
};

// Appends one range (header word + PFNs) to `words` at `position`; returns the new position, or 0
// if the range is malformed or does not fit in `capacity` words. `pfns` must hold
// gpa_range_pfn_count(byte_count, byte_offset) entries.
uint32_t append_gpa_range(uint64_t* words, uint32_t capacity, uint32_t position, uint32_t byte_count,
                          uint32_t byte_offset, const uint64_t* pfns);

}  // namespace hvkvm::vmbus
