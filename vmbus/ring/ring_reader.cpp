#include "vmbus/ring/ring_reader.h"

#include "vmbus/ring/ring_access.h"

namespace hvkvm::vmbus::ring {

using namespace detail;

RingError RingReader::attach(RingMemory& memory) {
    const uint32_t size = memory.data_size();
    if (check_data_size(size) != RingError::kOk) return RingError::kBadMemory;
    ControlPage* control = memory.control();
    const uint32_t read_index = load_hint(control->read_index);
    const uint32_t write_index = load_write_index(control);
    if (!is_valid_index(read_index, size)) return RingError::kCorruptReadIndex;
    if (!is_valid_index(write_index, size)) return RingError::kCorruptWriteIndex;
    memory_ = &memory;
    control_ = control;
    size_ = size;
    published_read_ = next_read_ = read_index;
    write_seen_ = write_index;
    return RingError::kOk;
}

RingError RingReader::refresh_write_index() {
    const uint32_t write_index = load_write_index(control_);
    if (!is_valid_index(write_index, size_)) return RingError::kCorruptWriteIndex;
    // The writer only moves forward over free space: measured from the read index it can see, the
    // published data never shrinks (and never covers the whole ring).
    if (ring_distance(published_read_, write_index, size_) < ring_distance(published_read_, write_seen_, size_)) {
        return RingError::kCorruptWriteIndex;
    }
    write_seen_ = write_index;
    return RingError::kOk;
}

RingError RingReader::next(IncomingPacket& packet, RangeBuffer ranges) {
    if (memory_ == nullptr) return RingError::kNotAttached;
    uint32_t available = ring_distance(next_read_, write_seen_, size_);
    if (available == 0) {
        const RingError error = refresh_write_index();
        if (error != RingError::kOk) return error;
        available = ring_distance(next_read_, write_seen_, size_);
        if (available == 0) return RingError::kEmpty;
    }
    // Writers publish whole packets, so the published data always holds at least one.
    if (available < kMinPacketSize) return RingError::kCorruptPacketLength;

    PacketDescriptor descriptor;
    copy_from_ring(*memory_, size_, next_read_, &descriptor, sizeof(descriptor));
    if (descriptor.offset8 < kDescriptorSize / kPacketAlignment || descriptor.offset8 > descriptor.len8) {
        return RingError::kCorruptPacketOffset;
    }
    const uint32_t body_bytes = uint32_t{descriptor.len8} * kPacketAlignment;
    if (body_bytes + kTrailerSize > available) return RingError::kCorruptPacketLength;
    if ((descriptor.flags & ~kPacketFlagCompletionRequested) != 0) return RingError::kCorruptPacketFlags;

    IncomingPacket parsed;
    parsed.type = static_cast<PacketType>(descriptor.type);
    parsed.flags = descriptor.flags;
    parsed.transaction_id = descriptor.transaction_id;
    parsed.start = next_read_;
    switch (parsed.type) {
        case PacketType::kInBand:
        case PacketType::kCompletion: break;
        case PacketType::kGpaDirect: {
            const RingError error = parse_gpa_direct(parsed, descriptor.offset8, ranges);
            if (error != RingError::kOk) return error;
            break;
        }
        default: return RingError::kCorruptPacketType;
    }
    const uint32_t header_bytes = uint32_t{descriptor.offset8} * kPacketAlignment;
    parsed.payload_offset = ring_advance(next_read_, header_bytes, size_);
    parsed.payload_size = body_bytes - header_bytes;
    packet = parsed;
    next_read_ = ring_advance(next_read_, body_bytes + kTrailerSize, size_);
    ++counters_.packets;
    return RingError::kOk;
}

RingError RingReader::parse_gpa_direct(IncomingPacket& packet, uint32_t offset8, RangeBuffer ranges) const {
    const uint32_t header_bytes = offset8 * kPacketAlignment;
    if (header_bytes < kGpaDirectPrefixSize) return RingError::kCorruptPacketOffset;
    GpaDirectHeader gpa_header;
    copy_from_ring(*memory_, size_, ring_advance(packet.start, kDescriptorSize, size_), &gpa_header, sizeof(gpa_header));
    const uint32_t word_count = (header_bytes - kGpaDirectPrefixSize) / sizeof(uint64_t);
    if (word_count > ranges.capacity) return RingError::kRangeBufferTooSmall;
    // One copy of the range words; validation and every later use look only at the copy.
    copy_from_ring(*memory_, size_, ring_advance(packet.start, kGpaDirectPrefixSize, size_), ranges.words,
                   word_count * static_cast<uint32_t>(sizeof(uint64_t)));
    uint32_t used_words = 0;
    if (validate_gpa_ranges(ranges.words, word_count, gpa_header.range_count, used_words) != GpaRangeError::kNone) {
        return RingError::kCorruptGpaRanges;
    }
    packet.ranges = GpaRangeList{ranges.words, used_words, gpa_header.range_count};
    return RingError::kOk;
}

bool RingReader::is_unreleased(const IncomingPacket& packet) const {
    return ring_distance(published_read_, packet.start, size_) < ring_distance(published_read_, next_read_, size_);
}

RingError RingReader::copy_payload(const IncomingPacket& packet, uint32_t offset, void* destination,
                                   uint32_t size) const {
    if (memory_ == nullptr) return RingError::kNotAttached;
    if (!is_unreleased(packet) || uint64_t{offset} + size > packet.payload_size) return RingError::kBadArgument;
    copy_from_ring(*memory_, size_, ring_advance(packet.payload_offset, offset, size_), destination, size);
    return RingError::kOk;
}

bool RingReader::release() {
    if (memory_ == nullptr || next_read_ == published_read_) return false;
    const uint32_t freed = ring_distance(published_read_, next_read_, size_);
    publish_read_index(control_, next_read_);
    published_read_ = next_read_;
    ++counters_.releases;
    // A writer that does not declare pending_send_size support polls instead (Linux does the same).
    if ((load_hint(control_->feature_bits) & kFeaturePendingSendSize) == 0) return false;
    full_fence();
    const uint32_t pending = load_hint(control_->pending_send_size);
    if (pending == 0) return false;
    // A corrupt write index is reported by the next next(); no signal is owed for it.
    if (refresh_write_index() != RingError::kOk) return false;
    const uint32_t free_after = size_ - ring_distance(published_read_, write_seen_, size_);
    const uint32_t free_before = free_after - freed;
    // Signal only on the transition from "not enough" to "enough": a writer needing `pending` bytes
    // fits once strictly more are free (one 8-byte unit always stays empty).
    if (free_before > pending || free_after <= pending) return false;
    ++counters_.signals;
    return true;
}

bool RingReader::has_data() {
    if (memory_ == nullptr) return false;
    if (write_seen_ != next_read_) return true;
    if (refresh_write_index() != RingError::kOk) return true;
    return write_seen_ != next_read_;
}

void RingReader::mask_signals() {
    if (control_ != nullptr) store_hint(control_->interrupt_mask, 1);
}

bool RingReader::arm_signal() {
    if (memory_ == nullptr) return false;
    if (next_read_ != published_read_) return true;
    // Release: a writer that sees the mask cleared also sees the read index stored before it.
    __atomic_store_n(&control_->interrupt_mask, 0, __ATOMIC_RELEASE);
    full_fence();
    if (refresh_write_index() != RingError::kOk) return true;
    return write_seen_ != next_read_;
}

}  // namespace hvkvm::vmbus::ring
