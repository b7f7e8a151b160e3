// libFuzzer target: a RingReader facing a hostile writer. The input supplies the control page, the
// data area and later write indices; the reader must report corruption or deliver packets, never
// read or write outside the ring (ASan), never loop without bound, and never hand out a payload or
// range list that does not fit the packet it came from. A RingWriter faces a hostile read index too.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "vmbus/fuzz/fuzz_input.h"
#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::ring;

using fuzz::check;

namespace {

void drain(RingReader& reader, std::vector<uint8_t>& payload, uint64_t* words, uint32_t capacity) {
    // Each successful next() consumes at least 24 bytes of published data, so a drain ends within
    // data_size / 24 packets; the bound below is what a hang would exceed.
    const uint32_t bound = reader.data_size() / kMinPacketSize + 1;
    for (uint32_t count = 0;; ++count) {
        check(count <= bound);
        IncomingPacket packet;
        const RingError error = reader.next(packet, RangeBuffer{words, capacity});
        if (error != RingError::kOk) {
            check(error == RingError::kEmpty || error == RingError::kRangeBufferTooSmall || is_corruption(error));
            return;
        }
        check(packet.payload_size < reader.data_size());
        payload.resize(packet.payload_size);
        check(reader.copy_payload(packet, 0, payload.data(), packet.payload_size) == RingError::kOk);
        check(reader.copy_payload(packet, 1, payload.data(), packet.payload_size) == RingError::kBadArgument);
        if (packet.type == PacketType::kGpaDirect) {
            check(packet.ranges.word_count <= capacity);
            GpaRangeCursor cursor = packet.ranges.cursor();
            GpaRange range;
            uint32_t words_walked = 0;
            while (cursor.next(range)) words_walked += 1 + range.pfn_count;
            check(words_walked == packet.ranges.word_count);
        }
        if (count % 3 == 0) reader.release();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::FuzzInput input(data, size);
    const uint32_t data_pages = 1 + input.take<uint8_t>() % 2;
    const uint32_t ring_bytes = data_pages * kDataPageSize;
    // Fresh heap memory of the exact size, so ASan sees any access past the ring.
    std::vector<uint8_t> control_bytes(sizeof(ControlPage));
    std::vector<uint8_t> ring_data(ring_bytes);
    auto* control = reinterpret_cast<ControlPage*>(control_bytes.data());
    control->write_index = input.take<uint32_t>();
    control->read_index = input.take<uint32_t>();
    control->interrupt_mask = input.take<uint32_t>();
    control->pending_send_size = input.take<uint32_t>();
    control->feature_bits = input.take<uint32_t>();
    const uint32_t capacity = input.take<uint8_t>() % 40;
    std::vector<uint64_t> words(capacity + 1);
    // The later write indices the writer "publishes" while the reader drains.
    uint32_t later_writes[4];
    for (uint32_t& index : later_writes) index = input.take<uint32_t>();
    size_t taken = 0;
    const uint8_t* packet_bytes = input.take_bytes(ring_bytes, taken);
    std::memcpy(ring_data.data(), packet_bytes, taken);

    ContiguousRingMemory memory(control, ring_data.data(), ring_bytes);
    RingReader reader;
    std::vector<uint8_t> payload;
    if (reader.attach(memory) == RingError::kOk) {
        drain(reader, payload, words.data(), capacity);
        for (uint32_t index : later_writes) {
            control->write_index = index;
            drain(reader, payload, words.data(), capacity);
            reader.release();
            reader.arm_signal();
        }
    }

    // The writer against a reader that moves its read index to values from the input.
    control->write_index = 0;
    control->read_index = 0;
    RingWriter writer;
    check(writer.attach(memory) == RingError::kOk);
    const uint8_t filler[600] = {};
    for (uint32_t round = 0; round < 16 && input.remaining() > 0; ++round) {
        const uint16_t length = input.take<uint16_t>() % sizeof(filler);
        const RingError error = writer.write_inband(round, filler, length);
        check(error == RingError::kOk || error == RingError::kFull || is_corruption(error));
        writer.publish();
        control->read_index = input.take<uint32_t>();
    }
    return 0;
}
