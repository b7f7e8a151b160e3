// The receiving end of one VMBus ring. next() validates and consumes packets one at a time into a
// private cursor; their payloads stay readable (copy_payload) until release() hands the space back
// to the writer with one index store, so a batch of packets costs one store and at most one signal.
//
// Everything the writer controls is read once into private memory and validated before use: the
// write index (in range, aligned, only ever moving forward over free space), each descriptor
// (type, flags, offset8, len8 against the published data) and a GPA-direct packet's ranges (copied
// whole into the caller's buffer, then validated there). A violation is reported as a corruption
// error and nothing past it is consumed; no peer value can make this code read or write outside the
// ring or loop without bound.
//
// Signalling follows Hyper-V: release() asks for a signal when it moved the free space across the
// writer's pending_send_size (Linux hv_pkt_iter_close). While draining, mask_signals() tells the
// writer not to signal; before sleeping, arm_signal() clears the mask and reports whether a packet
// slipped in meanwhile.
//
// Not thread-safe: one RingReader per ring, used by one thread at a time.
#pragma once

#include <stdint.h>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/ring/ring_error.h"
#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::ring {

// Where next() copies a GPA-direct packet's range words: its capacity bounds the ranges the
// caller is prepared to handle.
struct RangeBuffer {
    uint64_t* words = nullptr;
    uint32_t capacity = 0;
};

struct IncomingPacket {
    PacketType type = PacketType::kInBand;
    uint16_t flags = 0;
    uint64_t transaction_id = 0;
    uint32_t payload_size = 0;
    GpaRangeList ranges;  // kGpaDirect: validated words in the caller's RangeBuffer

    bool completion_requested() const { return (flags & kPacketFlagCompletionRequested) != 0; }

private:
    friend class RingReader;
    uint32_t start = 0;           // ring offset of the descriptor
    uint32_t payload_offset = 0;  // ring offset of the payload
};

struct RingReaderCounters {
    uint64_t packets = 0;   // consumed by next()
    uint64_t releases = 0;  // release() calls that stored a new read index
    uint64_t signals = 0;   // release() calls that asked for a signal
};

class RingReader {
public:
    // Takes over the reading end of the ring in `memory` (which must outlive this object).
    RingError attach(RingMemory& memory);

    // Validates the next packet and consumes it locally. kEmpty when the writer has published
    // nothing more. On any error the cursor does not move.
    RingError next(IncomingPacket& packet, RangeBuffer ranges = {});
    // Copies payload bytes [offset, offset + size) of a packet returned by next() and not yet
    // released. The writer may still scribble on them (it is the peer's data): parse the copy.
    RingError copy_payload(const IncomingPacket& packet, uint32_t offset, void* destination, uint32_t size) const;
    // Un-consumes the packets consumed since the last release().
    void rewind() { next_read_ = published_read_; }

    // Returns consumed space to the writer. True when the writer must be signalled.
    bool release();

    // For a reader that polls: true when next() has something to report (a packet published and
    // not yet consumed, or a corrupt write index). Consumes nothing and leaves the mask alone.
    bool has_data();

    // While draining: ask the writer not to signal.
    void mask_signals();
    // Before sleeping, after release(): ask the writer to signal again. Returns false when sleeping
    // is safe; true when it is not: a packet was published meanwhile (drain again), the write index
    // is corrupt (next() reports it), or consumed packets were not released (the writer could not
    // know the ring is empty).
    bool arm_signal();

    uint32_t data_size() const { return size_; }
    const RingReaderCounters& counters() const { return counters_; }

private:
    RingError refresh_write_index();
    RingError parse_gpa_direct(IncomingPacket& packet, uint32_t offset8, RangeBuffer ranges) const;
    bool is_unreleased(const IncomingPacket& packet) const;

    RingMemory* memory_ = nullptr;
    ControlPage* control_ = nullptr;
    uint32_t size_ = 0;
    uint32_t published_read_ = 0;  // the read index the writer can see
    uint32_t next_read_ = 0;       // start of the next packet to consume
    uint32_t write_seen_ = 0;      // the writer's index as last loaded and validated
    RingReaderCounters counters_;
};

}  // namespace hvkvm::vmbus::ring
