#include "vmbus/gpa/gpa_ranges.h"

namespace hvkvm::vmbus {
namespace {

GpaRangeHeader header_of(uint64_t word) {
    GpaRangeHeader header;
    __builtin_memcpy(&header, &word, sizeof(header));
    return header;
}

}  // namespace

const char* gpa_range_error_name(GpaRangeError error) {
    switch (error) {
        case GpaRangeError::kNone: return "none";
        case GpaRangeError::kNoRanges: return "no ranges";
        case GpaRangeError::kTooManyRanges: return "more ranges than words";
        case GpaRangeError::kEmptyRange: return "empty range";
        case GpaRangeError::kOffsetPastPage: return "range offset past its first page";
        case GpaRangeError::kMissingPfns: return "range PFNs missing";
    }
    return "unknown";
}

GpaRangeError validate_gpa_ranges(const uint64_t* words, uint32_t word_count, uint32_t range_count,
                                  uint32_t& used_words) {
    if (range_count == 0) return GpaRangeError::kNoRanges;
    // Each range takes a header and at least one PFN: reject absurd counts before looping, so the
    // loop below is bounded by word_count whatever the peer claims.
    if (range_count > word_count / 2) return GpaRangeError::kTooManyRanges;
    uint32_t position = 0;
    for (uint32_t i = 0; i < range_count; ++i) {
        if (position >= word_count) return GpaRangeError::kMissingPfns;
        const GpaRangeHeader header = header_of(words[position]);
        if (header.byte_count == 0) return GpaRangeError::kEmptyRange;
        if (header.byte_offset >= kHvPageSize) return GpaRangeError::kOffsetPastPage;
        const uint64_t pfns = gpa_range_pfn_count(header.byte_count, header.byte_offset);
        if (pfns > word_count - position - 1) return GpaRangeError::kMissingPfns;
        position += 1 + static_cast<uint32_t>(pfns);
    }
    used_words = position;
    return GpaRangeError::kNone;
}

bool GpaRangeCursor::next(GpaRange& range) {
    if (remaining_ == 0) return false;
    const GpaRangeHeader header = header_of(words_[0]);
    range.byte_count = header.byte_count;
    range.byte_offset = header.byte_offset;
    range.pfns = words_ + 1;
    range.pfn_count = static_cast<uint32_t>(gpa_range_pfn_count(header.byte_count, header.byte_offset));
    words_ += 1 + range.pfn_count;
    --remaining_;
    return true;
}

uint64_t GpaRangeList::total_bytes() const {
    uint64_t total = 0;
    GpaRangeCursor walk = cursor();
    GpaRange range;
    while (walk.next(range)) total += range.byte_count;
    return total;
}

uint32_t append_gpa_range(uint64_t* words, uint32_t capacity, uint32_t position, uint32_t byte_count,
                          uint32_t byte_offset, const uint64_t* pfns) {
    if (byte_count == 0 || byte_offset >= kHvPageSize || position > capacity) return 0;
    const uint64_t pfn_count = gpa_range_pfn_count(byte_count, byte_offset);
    if (pfn_count + 1 > capacity - position) return 0;
    const GpaRangeHeader header{byte_count, byte_offset};
    __builtin_memcpy(&words[position], &header, sizeof(header));
    __builtin_memcpy(&words[position + 1], pfns, pfn_count * sizeof(uint64_t));
    return position + 1 + static_cast<uint32_t>(pfn_count);
}

}  // namespace hvkvm::vmbus
