// GPADLs (guest physical address descriptor lists) travel as one GPADL_HEADER message and as many
// GPADL_BODY messages as the range words need (Linux create_gpadl_header(): 26 PFNs in the header
// after the range header word, 28 per body). GpadlMessageSplitter produces that sequence for a
// guest; GpadlAssembler puts it back together on the host, bounded and validated, for the channel
// server and for tests.
#pragma once

#include <stdint.h>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/protocol/channel_messages.h"
#include "vmbus/protocol/message_codec.h"

namespace hvkvm::vmbus::protocol {

enum class GpadlError : uint8_t {
    kNone,
    kTooLarge,        // more range words than range_buflen can describe, or than the host allows
    kBadRanges,       // the ranges do not validate, or leave words unused
    kNotStarted,      // a body before a header (or after a failure)
    kAlreadyComplete, // a body for a GPADL that is complete
    kWrongGpadl,      // a body naming another GPADL
    kOverflow,        // a body carrying more words than the GPADL has left
};
const char* gpadl_error_name(GpadlError error);

// Guest side: the messages that establish one GPADL.
class GpadlMessageSplitter {
public:
    // `ranges` must stay valid until the last message is produced.
    GpadlError start(uint32_t child_relid, uint32_t gpadl, const GpaRangeList& ranges);
    // The next message (the header, then the bodies); false when all were produced.
    bool next(MessageBuffer& message);
    // Messages start() will produce in total.
    uint32_t message_count() const;

private:
    uint32_t child_relid_ = 0;
    uint32_t gpadl_ = 0;
    GpaRangeList ranges_;
    uint32_t words_sent_ = 0;
    bool header_sent_ = false;
};

// Host side: one GPADL being received. The caller provides the storage for its words (sized with
// words_needed(), after checking that against its own limit on GPADL size).
class GpadlAssembler {
public:
    static uint32_t words_needed(const GpadlHeaderMessage& header) {
        return header.fixed.range_buflen / sizeof(uint64_t);
    }

    // Takes the header message; `storage` must hold words_needed(header) words.
    GpadlError start(const GpadlHeaderMessage& header, uint64_t* storage, uint32_t capacity);
    // Takes one body message. A body that would overflow the announced length is refused and
    // abandons the GPADL.
    GpadlError add_body(const GpadlBodyMessage& body);

    bool is_complete() const { return state_ == State::kComplete; }
    bool is_in_progress() const { return state_ == State::kInProgress; }
    uint32_t child_relid() const { return child_relid_; }
    uint32_t gpadl() const { return gpadl_; }
    uint32_t body_count() const { return bodies_; }
    // The validated ranges; empty unless is_complete().
    GpaRangeList ranges() const;

private:
    enum class State : uint8_t { kIdle, kInProgress, kComplete };
    GpadlError append(const uint64_t* words, uint32_t count);
    GpadlError fail(GpadlError error);

    State state_ = State::kIdle;
    uint32_t child_relid_ = 0;
    uint32_t gpadl_ = 0;
    uint32_t range_count_ = 0;
    uint32_t total_words_ = 0;
    uint32_t received_words_ = 0;
    uint32_t bodies_ = 0;
    uint64_t* words_ = nullptr;
};

}  // namespace hvkvm::vmbus::protocol
