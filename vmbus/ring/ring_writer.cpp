#include "vmbus/ring/ring_writer.h"

#include "vmbus/ring/ring_access.h"

namespace hvkvm::vmbus::ring {

using namespace detail;

namespace {

bool is_sendable_type(PacketType type) {
    return type == PacketType::kInBand || type == PacketType::kCompletion || type == PacketType::kGpaDirect;
}

// Header bytes before the payload: the descriptor, plus for GPA-direct its header and ranges.
// 64-bit so that absurd range lists cannot wrap.
uint64_t header_bytes_of(const OutgoingPacket& packet) {
    uint64_t bytes = kDescriptorSize;
    if (packet.type != PacketType::kGpaDirect) return bytes;
    bytes += sizeof(GpaDirectHeader);
    for (uint32_t i = 0; i < packet.range_count; ++i) {
        bytes += sizeof(uint64_t) * (1 + gpa_range_pfn_count(packet.ranges[i].byte_count, packet.ranges[i].byte_offset));
    }
    return bytes;
}

uint64_t payload_bytes_of(const OutgoingPacket& packet) {
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < packet.payload_piece_count; ++i) bytes += packet.payload[i].size;
    return bytes;
}

bool is_well_formed(const OutgoingPacket& packet) {
    if (!is_sendable_type(packet.type)) return false;
    if (packet.payload_piece_count != 0 && packet.payload == nullptr) return false;
    if (packet.type != PacketType::kGpaDirect) return packet.range_count == 0;
    if (packet.range_count == 0 || packet.ranges == nullptr) return false;
    for (uint32_t i = 0; i < packet.range_count; ++i) {
        const GpaRange& range = packet.ranges[i];
        if (range.byte_count == 0 || range.byte_offset >= kHvPageSize || range.pfns == nullptr) return false;
        if (range.pfn_count != gpa_range_pfn_count(range.byte_count, range.byte_offset)) return false;
    }
    return true;
}

}  // namespace

RingError RingWriter::attach(RingMemory& memory) {
    const uint32_t size = memory.data_size();
    if (check_data_size(size) != RingError::kOk) return RingError::kBadMemory;
    ControlPage* control = memory.control();
    // Whoever set the ring up (the guest, when it allocated it) left both indices; take them once.
    const uint32_t write_index = load_hint(control->write_index);
    const uint32_t read_index = load_read_index(control);
    if (!is_valid_index(write_index, size)) return RingError::kCorruptWriteIndex;
    if (!is_valid_index(read_index, size)) return RingError::kCorruptReadIndex;
    memory_ = &memory;
    control_ = control;
    size_ = size;
    published_write_ = next_write_ = write_index;
    read_seen_ = read_index;
    pending_send_size_set_ = false;
    signal_owed_ = false;
    store_hint(control->pending_send_size, 0);
    // feature_bits belongs to the writer: it promises to set pending_send_size when blocked.
    store_hint(control->feature_bits, kFeaturePendingSendSize);
    return RingError::kOk;
}

uint32_t RingWriter::packet_size(const OutgoingPacket& packet) {
    const uint64_t header = header_bytes_of(packet);
    const uint64_t body = (header + payload_bytes_of(packet) + kPacketAlignment - 1) & ~uint64_t{kPacketAlignment - 1};
    // offset8 and len8 are 16-bit counts of 8-byte units.
    if (body / kPacketAlignment > 0xffff) return 0;
    return static_cast<uint32_t>(body) + kTrailerSize;
}

uint32_t RingWriter::unpublished_bytes() const { return ring_distance(published_write_, next_write_, size_); }

// A packet fits when it leaves at least one free 8-byte unit: a ring whose write index caught up
// with its read index would read as empty.
bool RingWriter::fits(uint32_t bytes) const { return bytes < size_ - ring_distance(read_seen_, next_write_, size_); }

RingError RingWriter::refresh_read_index() {
    const uint32_t read_index = load_read_index(control_);
    if (!is_valid_index(read_index, size_)) return RingError::kCorruptReadIndex;
    // The reader only moves forward, and only over packets it has been shown.
    if (ring_distance(read_seen_, read_index, size_) > ring_distance(read_seen_, published_write_, size_)) {
        return RingError::kCorruptReadIndex;
    }
    read_seen_ = read_index;
    return RingError::kOk;
}

RingError RingWriter::make_room(uint32_t bytes) {
    RingError error = refresh_read_index();
    if (error != RingError::kOk || fits(bytes)) return error;
    // The reader can free only what it can see, and it measures free space from the published
    // write index: publish this batch now (its signal is owed to the next publish()), so that the
    // pending size asked for is this packet alone. A batch held back while the writer waited would
    // ask for more room than the reader can ever make, and nobody would wake the writer.
    if (next_write_ != published_write_) signal_owed_ |= store_write_index();
    // Ask for a signal once more than this packet's size is free, then look once more: the reader
    // may have freed space before it could see the request (see ring_access.h).
    store_hint(control_->pending_send_size, bytes);
    pending_send_size_set_ = true;
    full_fence();
    error = refresh_read_index();
    if (error != RingError::kOk) return error;
    if (fits(bytes)) {
        ++counters_.full_recovered;
        return RingError::kOk;
    }
    ++counters_.full;
    return RingError::kFull;
}

RingError RingWriter::write(const OutgoingPacket& packet) {
    if (memory_ == nullptr) return RingError::kNotAttached;
    if (!is_well_formed(packet)) return RingError::kBadArgument;
    const uint32_t bytes = packet_size(packet);
    if (bytes == 0 || bytes > max_packet_size()) return RingError::kPacketTooLarge;
    if (!fits(bytes)) {
        const RingError error = make_room(bytes);
        if (error != RingError::kOk) return error;
    }
    if (pending_send_size_set_) {
        store_hint(control_->pending_send_size, 0);
        pending_send_size_set_ = false;
    }
    copy_packet(packet, bytes, static_cast<uint32_t>(header_bytes_of(packet)));
    next_write_ = ring_advance(next_write_, bytes, size_);
    ++counters_.packets;
    return RingError::kOk;
}

void RingWriter::copy_packet(const OutgoingPacket& packet, uint32_t packet_bytes, uint32_t header_bytes) {
    const uint32_t start = next_write_;
    uint32_t position = start;
    auto append = [&](const void* source, uint32_t size) {
        copy_to_ring(*memory_, size_, position, source, size);
        position = ring_advance(position, size, size_);
    };

    const uint32_t body_bytes = packet_bytes - kTrailerSize;
    const PacketDescriptor descriptor{
        static_cast<uint16_t>(packet.type), static_cast<uint16_t>(header_bytes / kPacketAlignment),
        static_cast<uint16_t>(body_bytes / kPacketAlignment),
        static_cast<uint16_t>(packet.completion_requested ? kPacketFlagCompletionRequested : 0),
        packet.transaction_id};
    append(&descriptor, sizeof(descriptor));
    if (packet.type == PacketType::kGpaDirect) {
        const GpaDirectHeader gpa_header{0, packet.range_count};
        append(&gpa_header, sizeof(gpa_header));
        for (uint32_t i = 0; i < packet.range_count; ++i) {
            const GpaRange& range = packet.ranges[i];
            const GpaRangeHeader range_header{range.byte_count, range.byte_offset};
            append(&range_header, sizeof(range_header));
            append(range.pfns, range.pfn_count * static_cast<uint32_t>(sizeof(uint64_t)));
        }
    }
    uint32_t written = header_bytes;
    for (uint32_t i = 0; i < packet.payload_piece_count; ++i) {
        append(packet.payload[i].data, packet.payload[i].size);
        written += packet.payload[i].size;
    }
    // Zero the padding so stale bytes of this side's memory never reach the peer.
    static constexpr uint8_t kZeros[kPacketAlignment] = {};
    append(kZeros, body_bytes - written);
    const PacketTrailer trailer{0, start};
    append(&trailer, sizeof(trailer));
}

RingError RingWriter::write_inband(uint64_t transaction_id, const void* payload, uint32_t size,
                                   bool completion_requested) {
    const PayloadPiece piece{payload, size};
    OutgoingPacket packet;
    packet.type = PacketType::kInBand;
    packet.transaction_id = transaction_id;
    packet.completion_requested = completion_requested;
    packet.payload = &piece;
    packet.payload_piece_count = 1;
    return write(packet);
}

RingError RingWriter::write_completion(uint64_t transaction_id, const void* payload, uint32_t size) {
    const PayloadPiece piece{payload, size};
    OutgoingPacket packet;
    packet.type = PacketType::kCompletion;
    packet.transaction_id = transaction_id;
    packet.payload = &piece;
    packet.payload_piece_count = 1;
    return write(packet);
}

bool RingWriter::publish() {
    const bool owed = signal_owed_;
    signal_owed_ = false;
    if (memory_ == nullptr || next_write_ == published_write_) return owed;
    return store_write_index() || owed;
}

bool RingWriter::store_write_index() {
    const uint32_t previous = published_write_;
    publish_write_index(control_, next_write_);
    published_write_ = next_write_;
    ++counters_.publishes;
    // Signal only for the empty -> non-empty transition, and only if the reader is not draining.
    full_fence();
    if (__atomic_load_n(&control_->interrupt_mask, __ATOMIC_ACQUIRE) != 0) return false;
    // Acquire on interrupt_mask above: a reader that cleared it after storing its read index (see
    // RingReader::arm_signal) has that read index visible here.
    if (load_read_index(control_) != previous) return false;
    ++counters_.signals;
    return true;
}

}  // namespace hvkvm::vmbus::ring
