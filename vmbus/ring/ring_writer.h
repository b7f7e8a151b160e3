// The sending end of one VMBus ring. Packets are written after each other into the data area
// (write() and friends) and become visible to the reader together when publish() stores the write
// index: a batch costs one index store and at most one signal.
//
// Signalling follows Hyper-V: publish() asks for a signal only when the ring went from empty to
// non-empty while the reader had not set interrupt_mask (Linux hv_signal_on_write). When a packet
// does not fit, write() publishes the batch written so far (the reader can free only what it
// sees), sets pending_send_size to the packet's size, re-checks, and returns kFull; the reader
// signals once more than that is free (RingReader::release()). The signal that early publish may
// owe the reader is returned by the next publish(), which a batch always ends with.
//
// Not thread-safe: one RingWriter per ring, used by one thread at a time.
#pragma once

#include <stdint.h>

#include "vmbus/gpa/gpa_ranges.h"
#include "vmbus/ring/ring_error.h"
#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::ring {

// One piece of a payload gathered from several buffers.
struct PayloadPiece {
    const void* data;
    uint32_t size;
};

struct OutgoingPacket {
    PacketType type = PacketType::kInBand;  // kInBand, kCompletion or kGpaDirect
    uint64_t transaction_id = 0;
    bool completion_requested = false;
    const GpaRange* ranges = nullptr;  // kGpaDirect only: at least one
    uint32_t range_count = 0;
    const PayloadPiece* payload = nullptr;
    uint32_t payload_piece_count = 0;
};

struct RingWriterCounters {
    uint64_t packets = 0;         // written (published or not)
    uint64_t publishes = 0;       // publish() calls that stored a new write index
    uint64_t signals = 0;         // publish() calls that asked for a signal
    uint64_t full = 0;            // write() calls that returned kFull
    uint64_t full_recovered = 0;  // times the re-check after setting pending_send_size found room
};

class RingWriter {
public:
    // Takes over the writing end of the ring in `memory` (which must outlive this object): checks
    // the data size and both indices, and declares pending_send_size support in feature_bits.
    RingError attach(RingMemory& memory);

    // Appends a packet after those written since the last publish(). kFull has published the
    // packets written before it (call publish() for the signal that may be owed) and leaves this
    // one unwritten: retry after the reader signals.
    RingError write(const OutgoingPacket& packet);
    RingError write_inband(uint64_t transaction_id, const void* payload, uint32_t size,
                           bool completion_requested = false);
    RingError write_completion(uint64_t transaction_id, const void* payload, uint32_t size);

    // Makes every written packet visible to the reader. Returns true when the reader must be
    // signalled (the caller sends the event: HvSignalEvent, eventfd, ...).
    bool publish();
    // Forgets packets written since the last publish() (or since a kFull, which published them).
    void discard_unpublished() { next_write_ = published_write_; }

    // Total ring bytes a packet takes: descriptor, GPA-direct header and ranges, payload, padding to
    // 8 bytes and the trailer. 0 when it could not be encoded (too long for len8).
    static uint32_t packet_size(const OutgoingPacket& packet);
    // The largest packet_size() this ring can ever take (with the ring empty).
    uint32_t max_packet_size() const { return size_ - kPacketAlignment; }
    uint32_t unpublished_bytes() const;
    const RingWriterCounters& counters() const { return counters_; }

private:
    RingError refresh_read_index();
    bool fits(uint32_t bytes) const;
    RingError make_room(uint32_t bytes);
    bool store_write_index();
    void copy_packet(const OutgoingPacket& packet, uint32_t packet_bytes, uint32_t header_bytes);

    RingMemory* memory_ = nullptr;
    ControlPage* control_ = nullptr;
    uint32_t size_ = 0;
    uint32_t published_write_ = 0;  // the write index the reader can see
    uint32_t next_write_ = 0;       // where the next packet of this batch goes
    uint32_t read_seen_ = 0;        // the reader's index as last loaded and validated
    bool pending_send_size_set_ = false;
    bool signal_owed_ = false;  // a publish inside write() found the reader waiting for it
    RingWriterCounters counters_;
};

}  // namespace hvkvm::vmbus::ring
