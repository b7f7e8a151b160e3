#include "vmbus/protocol/gpadl.h"

namespace hvkvm::vmbus::protocol {

const char* gpadl_error_name(GpadlError error) {
    switch (error) {
        case GpadlError::kNone: return "none";
        case GpadlError::kTooLarge: return "GPADL too large";
        case GpadlError::kBadRanges: return "GPADL ranges malformed";
        case GpadlError::kNotStarted: return "GPADL body without header";
        case GpadlError::kAlreadyComplete: return "GPADL already complete";
        case GpadlError::kWrongGpadl: return "GPADL body for another GPADL";
        case GpadlError::kOverflow: return "GPADL body past the announced length";
    }
    return "unknown";
}

// --- Guest side ------------------------------------------------------------------------------

GpadlError GpadlMessageSplitter::start(uint32_t child_relid, uint32_t gpadl, const GpaRangeList& ranges) {
    if (ranges.word_count > kGpadlMaxWords || ranges.range_count > 0xffff) return GpadlError::kTooLarge;
    uint32_t used = 0;
    if (validate_gpa_ranges(ranges.words, ranges.word_count, ranges.range_count, used) != GpaRangeError::kNone ||
        used != ranges.word_count) {
        return GpadlError::kBadRanges;
    }
    child_relid_ = child_relid;
    gpadl_ = gpadl;
    ranges_ = ranges;
    words_sent_ = 0;
    header_sent_ = false;
    return GpadlError::kNone;
}

uint32_t GpadlMessageSplitter::message_count() const {
    if (ranges_.word_count <= kGpadlHeaderMaxWords) return 1;
    return 1 + (ranges_.word_count - kGpadlHeaderMaxWords + kGpadlBodyMaxWords - 1) / kGpadlBodyMaxWords;
}

bool GpadlMessageSplitter::next(MessageBuffer& message) {
    const uint32_t remaining = ranges_.word_count - words_sent_;
    if (header_sent_ && remaining == 0) return false;
    if (!header_sent_) {
        const uint32_t count = remaining < kGpadlHeaderMaxWords ? remaining : kGpadlHeaderMaxWords;
        GpadlHeader header{};
        header.child_relid = child_relid_;
        header.gpadl = gpadl_;
        header.range_buflen = static_cast<uint16_t>(ranges_.word_count * sizeof(uint64_t));
        header.range_count = static_cast<uint16_t>(ranges_.range_count);
        message = encode_gpadl_header(header, ranges_.words, count);
        header_sent_ = true;
        words_sent_ = count;
        return true;
    }
    const uint32_t count = remaining < kGpadlBodyMaxWords ? remaining : kGpadlBodyMaxWords;
    GpadlBody body{};
    body.gpadl = gpadl_;
    message = encode_gpadl_body(body, ranges_.words + words_sent_, count);
    words_sent_ += count;
    return true;
}

// --- Host side -------------------------------------------------------------------------------

GpadlError GpadlAssembler::fail(GpadlError error) {
    state_ = State::kIdle;
    return error;
}

GpadlError GpadlAssembler::start(const GpadlHeaderMessage& header, uint64_t* storage, uint32_t capacity) {
    state_ = State::kIdle;
    const uint32_t total = words_needed(header);
    if (total > capacity) return GpadlError::kTooLarge;
    child_relid_ = header.fixed.child_relid;
    gpadl_ = header.fixed.gpadl;
    range_count_ = header.fixed.range_count;
    total_words_ = total;
    received_words_ = 0;
    bodies_ = 0;
    words_ = storage;
    state_ = State::kInProgress;
    return append(header.words, header.word_count);
}

GpadlError GpadlAssembler::add_body(const GpadlBodyMessage& body) {
    if (state_ == State::kIdle) return GpadlError::kNotStarted;
    if (body.fixed.gpadl != gpadl_) return GpadlError::kWrongGpadl;
    if (state_ == State::kComplete) return GpadlError::kAlreadyComplete;
    ++bodies_;
    return append(body.words, body.word_count);
}

GpadlError GpadlAssembler::append(const uint64_t* words, uint32_t count) {
    // The parser guarantees count >= 1, so every accepted message makes progress and a GPADL
    // completes after at most total_words_ messages.
    if (count > total_words_ - received_words_) return fail(GpadlError::kOverflow);
    __builtin_memcpy(words_ + received_words_, words, count * sizeof(uint64_t));
    received_words_ += count;
    if (received_words_ < total_words_) return GpadlError::kNone;
    uint32_t used = 0;
    if (validate_gpa_ranges(words_, total_words_, range_count_, used) != GpaRangeError::kNone ||
        used != total_words_) {
        return fail(GpadlError::kBadRanges);
    }
    state_ = State::kComplete;
    return GpadlError::kNone;
}

GpaRangeList GpadlAssembler::ranges() const {
    if (state_ != State::kComplete) return {};
    return GpaRangeList{words_, total_words_, range_count_};
}

}  // namespace hvkvm::vmbus::protocol
