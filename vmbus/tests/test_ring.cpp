// The ring buffer between a well-behaved writer and reader: packet formats, wrap-around, batching,
// and Hyper-V's signalling rules (empty -> non-empty with interrupt_mask clear; pending_send_size).
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"
#include "vmbus/tests/ring_fixture.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::ring;
using hvkvm::vmbus::test::pattern;
using hvkvm::vmbus::test::TestRing;

namespace {

struct Endpoints {
    explicit Endpoints(uint32_t data_pages) : ring(data_pages) {
        REQUIRE(writer.attach(ring.memory()) == RingError::kOk);
        REQUIRE(reader.attach(ring.memory()) == RingError::kOk);
    }
    TestRing ring;
    RingWriter writer;
    RingReader reader;
};

std::vector<uint8_t> read_payload(RingReader& reader, const IncomingPacket& packet) {
    std::vector<uint8_t> bytes(packet.payload_size);
    REQUIRE(reader.copy_payload(packet, 0, bytes.data(), packet.payload_size) == RingError::kOk);
    return bytes;
}

constexpr uint32_t inband_size(uint32_t payload) { return kDescriptorSize + align_to_packet(payload) + kTrailerSize; }

}  // namespace

TEST_CASE("ring: an in-band packet round-trips with its transaction id", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(61, 1);
    REQUIRE(e.writer.write_inband(0x1122334455667788ull, payload.data(), 61, true) == RingError::kOk);
    CHECK(e.ring.control().write_index == 0);  // nothing visible before publish()
    CHECK(e.writer.publish());                 // empty -> non-empty, mask clear: signal
    CHECK(e.ring.control().write_index == inband_size(61));

    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.type == PacketType::kInBand);
    CHECK(packet.transaction_id == 0x1122334455667788ull);
    CHECK(packet.completion_requested());
    CHECK(packet.payload_size == 64);  // padded to 8 bytes, as on the wire
    CHECK(std::memcmp(read_payload(e.reader, packet).data(), payload.data(), 61) == 0);
    CHECK(e.reader.next(packet) == RingError::kEmpty);
    CHECK_FALSE(e.reader.release());  // the writer asked for nothing
    CHECK(e.ring.control().read_index == inband_size(61));
}

TEST_CASE("ring: the writer pads with zeros and ends each packet with its start offset", "[vmbus][ring]") {
    Endpoints e(1);
    std::memset(e.ring.data(), 0xee, e.ring.data_size());
    const auto payload = pattern(13, 2);
    REQUIRE(e.writer.write_completion(7, payload.data(), 13) == RingError::kOk);
    e.writer.publish();
    PacketDescriptor descriptor;
    e.ring.peek(0, &descriptor, sizeof(descriptor));
    CHECK(descriptor.type == 0xb);
    CHECK(descriptor.offset8 == 2);
    CHECK(descriptor.len8 == 4);  // 16 + 16 bytes
    CHECK(descriptor.flags == 0);
    uint8_t padding[3];
    e.ring.peek(16 + 13, padding, 3);
    CHECK((padding[0] | padding[1] | padding[2]) == 0);
    uint64_t trailer;
    e.ring.peek(32, &trailer, 8);
    CHECK(trailer == 0);  // packet at offset 0

    REQUIRE(e.writer.write_inband(8, payload.data(), 13) == RingError::kOk);
    e.writer.publish();
    e.ring.peek(40 + 32, &trailer, 8);
    CHECK(trailer == uint64_t{40} << 32);  // Linux's `write_index << 32`
}

TEST_CASE("ring: a GPA-direct packet carries its ranges and payload", "[vmbus][ring]") {
    Endpoints e(2);
    const uint64_t first_pfns[] = {0x10, 0x11};
    const uint64_t second_pfns[] = {0x99};
    const GpaRange ranges[] = {{5000, 100, first_pfns, 2}, {4096, 0, second_pfns, 1}};
    const auto payload = pattern(64, 3);
    const PayloadPiece piece{payload.data(), 64};
    OutgoingPacket out;
    out.type = PacketType::kGpaDirect;
    out.transaction_id = 42;
    out.completion_requested = true;
    out.ranges = ranges;
    out.range_count = 2;
    out.payload = &piece;
    out.payload_piece_count = 1;
    CHECK(RingWriter::packet_size(out) == 16 + 8 + 24 + 16 + 64 + 8);
    REQUIRE(e.writer.write(out) == RingError::kOk);
    e.writer.publish();

    uint64_t words[5];
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet, RangeBuffer{words, 5}) == RingError::kOk);
    CHECK(packet.type == PacketType::kGpaDirect);
    CHECK(packet.transaction_id == 42);
    CHECK(packet.payload_size == 64);
    CHECK(read_payload(e.reader, packet) == payload);
    REQUIRE(packet.ranges.range_count == 2);
    CHECK(packet.ranges.total_bytes() == 9096);
    GpaRangeCursor cursor = packet.ranges.cursor();
    GpaRange range;
    REQUIRE(cursor.next(range));
    CHECK(range.byte_count == 5000);
    CHECK(range.byte_offset == 100);
    REQUIRE(range.pfn_count == 2);
    CHECK(range.pfns[1] == 0x11);
    REQUIRE(cursor.next(range));
    CHECK(range.pfns[0] == 0x99);
    CHECK_FALSE(cursor.next(range));
}

TEST_CASE("ring: a payload gathered from pieces arrives contiguous", "[vmbus][ring]") {
    Endpoints e(1);
    const auto head = pattern(5, 4);
    const auto tail = pattern(30, 5);
    const PayloadPiece pieces[] = {{head.data(), 5}, {tail.data(), 30}};
    OutgoingPacket out;
    out.payload = pieces;
    out.payload_piece_count = 2;
    REQUIRE(e.writer.write(out) == RingError::kOk);
    e.writer.publish();
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    const auto bytes = read_payload(e.reader, packet);
    CHECK(std::memcmp(bytes.data(), head.data(), 5) == 0);
    CHECK(std::memcmp(bytes.data() + 5, tail.data(), 30) == 0);
}

TEST_CASE("ring: packets, descriptors and trailers wrap around the end of the data area", "[vmbus][ring]") {
    Endpoints e(1);
    // Park both indices 8 bytes before the end, so the next descriptor is split across the end.
    const auto filler = pattern(4064, 6);
    REQUIRE(e.writer.write_inband(0, filler.data(), 4064) == RingError::kOk);  // 4088 bytes
    e.writer.publish();
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    e.reader.release();
    REQUIRE(e.ring.control().read_index == 4088);

    const auto payload = pattern(100, 7);
    REQUIRE(e.writer.write_inband(99, payload.data(), 100) == RingError::kOk);
    e.writer.publish();
    CHECK(e.ring.control().write_index == 4088 + inband_size(100) - 4096);
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.transaction_id == 99);
    CHECK(std::memcmp(read_payload(e.reader, packet).data(), payload.data(), 100) == 0);

    // Many sizes in a row: every wrap position for payloads and trailers is crossed.
    for (uint32_t round = 0; round < 600; ++round) {
        const uint32_t size = 1 + (round * 37) % 700;
        const auto bytes = pattern(size, round);
        const uint32_t start = e.ring.control().write_index;
        REQUIRE(e.writer.write_inband(round, bytes.data(), size) == RingError::kOk);
        e.writer.publish();
        uint64_t trailer;
        e.ring.peek((e.ring.control().write_index + 4096 - 8) % 4096, &trailer, 8);
        CHECK(trailer == uint64_t{start} << 32);
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK(packet.transaction_id == round);
        const auto got = read_payload(e.reader, packet);
        REQUIRE(std::memcmp(got.data(), bytes.data(), size) == 0);
        e.reader.release();
    }
}

TEST_CASE("ring: a ring whose data pages are scattered works like a contiguous one", "[vmbus][ring]") {
    TestRing backing(4);  // use its data pages in a shuffled order
    uint8_t* pages[] = {backing.data() + 2 * 4096, backing.data(), backing.data() + 3 * 4096, backing.data() + 4096};
    PagedRingMemory memory(&backing.control(), pages, 4);
    REQUIRE(memory.data_size() == 16384);

    // The memory itself: a write across page boundaries lands page by page.
    const auto bytes = pattern(9000, 8);
    memory.write(4000, bytes.data(), 9000);
    CHECK(std::memcmp(pages[0] + 4000, bytes.data(), 96) == 0);
    CHECK(std::memcmp(pages[1], bytes.data() + 96, 4096) == 0);
    CHECK(std::memcmp(pages[3], bytes.data() + 96 + 8192, 9000 - 96 - 8192) == 0);
    std::vector<uint8_t> back(9000);
    memory.read(4000, back.data(), 9000);
    CHECK(back == bytes);

    RingWriter writer;
    RingReader reader;
    REQUIRE(writer.attach(memory) == RingError::kOk);
    REQUIRE(reader.attach(memory) == RingError::kOk);
    for (uint32_t round = 0; round < 200; ++round) {
        const uint32_t size = 1 + (round * 1237) % 6000;
        const auto payload = pattern(size, round);
        REQUIRE(writer.write_inband(round, payload.data(), size) == RingError::kOk);
        writer.publish();
        IncomingPacket packet;
        REQUIRE(reader.next(packet) == RingError::kOk);
        std::vector<uint8_t> got(size);
        REQUIRE(reader.copy_payload(packet, 0, got.data(), size) == RingError::kOk);
        REQUIRE(got == payload);
        reader.release();
    }
}

TEST_CASE("ring: the largest packet fits an empty ring exactly, one unit more never does", "[vmbus][ring]") {
    Endpoints e(1);
    CHECK(e.writer.max_packet_size() == 4088);
    const auto payload = pattern(4072, 9);
    CHECK(e.writer.write_inband(0, payload.data(), 4065) == RingError::kPacketTooLarge);
    REQUIRE(e.writer.write_inband(0, payload.data(), 4064) == RingError::kOk);
    e.writer.publish();
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.payload_size == 4064);
}

TEST_CASE("ring: len8 bounds a packet to 512 KiB whatever the ring size", "[vmbus][ring]") {
    Endpoints e(160);
    std::vector<uint8_t> payload(0xffff * 8);
    CHECK(e.writer.write_inband(0, payload.data(), 0xffff * 8 - 16) == RingError::kOk);
    CHECK(e.writer.write_inband(0, payload.data(), 0xffff * 8 - 15) == RingError::kPacketTooLarge);
}

TEST_CASE("ring: a full ring sets pending_send_size and the reader signals once it is crossed", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(1000, 10);  // 1024-byte packets
    for (int i = 0; i < 3; ++i) REQUIRE(e.writer.write_inband(i, payload.data(), 1000) == RingError::kOk);
    e.writer.publish();
    // 1024 bytes free: a 1024-byte packet would fill the ring exactly, which is refused.
    CHECK(e.writer.write_inband(3, payload.data(), 1000) == RingError::kFull);
    CHECK(e.ring.control().pending_send_size == 1024);
    CHECK(e.writer.counters().full == 1);
    // One unit less fits exactly.
    REQUIRE(e.writer.write_inband(3, payload.data(), 992) == RingError::kOk);
    CHECK(e.ring.control().pending_send_size == 0);  // cleared by the successful write
    e.writer.publish();                               // now 8 bytes free

    CHECK(e.writer.write_inband(4, payload.data(), 1000) == RingError::kFull);
    CHECK(e.ring.control().pending_send_size == 1024);
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(e.reader.release());  // 8 -> 1032 free: crosses 1024
    CHECK(e.reader.counters().signals == 1);
    REQUIRE(e.writer.write_inband(4, payload.data(), 1000) == RingError::kOk);
    CHECK(e.ring.control().pending_send_size == 0);
}

TEST_CASE("ring: the reader signals only on the transition to enough free space", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(1000, 11);
    for (int i = 0; i < 3; ++i) REQUIRE(e.writer.write_inband(i, payload.data(), 1000) == RingError::kOk);
    e.writer.publish();  // 1024 bytes free
    IncomingPacket packet;

    SECTION("free space equal to pending_send_size is not enough") {
        e.ring.control().pending_send_size = 2048;
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK_FALSE(e.reader.release());  // 2048 free: not more than 2048
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK(e.reader.release());  // 3072 free
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK_FALSE(e.reader.release());  // already had enough: no second signal
    }
    SECTION("one unit less than the free space is enough") {
        e.ring.control().pending_send_size = 2040;
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK(e.reader.release());
    }
    SECTION("a writer that did not declare the feature is never signalled") {
        e.ring.control().feature_bits = 0;
        e.ring.control().pending_send_size = 2040;
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK_FALSE(e.reader.release());
    }
    SECTION("a pending size no ring can satisfy never signals") {
        e.ring.control().pending_send_size = 0xffffffff;
        for (int i = 0; i < 3; ++i) REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK_FALSE(e.reader.release());
    }
}

TEST_CASE("ring: a batch that fills the ring is published and pending_send_size is the one packet", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(1000, 12);
    for (int i = 0; i < 3; ++i) REQUIRE(e.writer.write_inband(i, payload.data(), 1000) == RingError::kOk);
    CHECK(e.writer.unpublished_bytes() == 3072);
    CHECK(e.writer.write_inband(3, payload.data(), 1000) == RingError::kFull);
    CHECK(e.writer.unpublished_bytes() == 0);
    CHECK(e.ring.control().write_index == 3072);          // the reader can see (and free) the batch
    CHECK(e.ring.control().pending_send_size == 1024);    // not 3072 + 1024: no ring frees that much
    CHECK(e.writer.publish());                             // the signal the early publish owed
    CHECK_FALSE(e.writer.publish());                       // owed once

    // The reader drains the batch; the release that leaves more than 1024 bytes free signals.
    IncomingPacket packet;
    int signals = 0;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        signals += e.reader.release() ? 1 : 0;
    }
    CHECK(signals == 1);
    CHECK(e.writer.write_inband(3, payload.data(), 1000) == RingError::kOk);
}

TEST_CASE("ring: a writer blocked behind its own batch is woken once the reader drains it", "[vmbus][ring]") {
    // The echo VSP's pattern: answer requests in one batch until the ring is full, publish, and
    // sleep until the reader's release signals. Every batch length and packet size must wake it.
    for (uint32_t payload_size : {8u, 232u, 504u, 1000u, 2000u}) {
        for (int batch_published_early = 0; batch_published_early < 2; ++batch_published_early) {
            Endpoints e(1);
            const auto payload = pattern(payload_size, 17);
            int written = 0;
            if (batch_published_early) {  // part of the ring was published by an earlier batch
                REQUIRE(e.writer.write_inband(0, payload.data(), payload_size) == RingError::kOk);
                e.writer.publish();
                ++written;
            }
            RingError error;
            while ((error = e.writer.write_inband(written, payload.data(), payload_size)) == RingError::kOk) ++written;
            REQUIRE(error == RingError::kFull);
            e.writer.publish();
            IncomingPacket packet;
            bool woken = false;
            for (int i = 0; i < written && !woken; ++i) {
                REQUIRE(e.reader.next(packet) == RingError::kOk);
                woken = e.reader.release();
            }
            INFO("payload " << payload_size << ", early batch " << batch_published_early);
            CHECK(woken);
            CHECK(e.writer.write_inband(written, payload.data(), payload_size) == RingError::kOk);
        }
    }
}

TEST_CASE("ring: the writer signals only when the ring goes from empty to non-empty", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(32, 13);
    REQUIRE(e.writer.write_inband(1, payload.data(), 32) == RingError::kOk);
    CHECK(e.writer.publish());
    REQUIRE(e.writer.write_inband(2, payload.data(), 32) == RingError::kOk);
    CHECK_FALSE(e.writer.publish());  // the reader has not consumed the first yet
    CHECK_FALSE(e.writer.publish());  // nothing new: no index store, no signal
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    e.reader.release();
    REQUIRE(e.writer.write_inband(3, payload.data(), 32) == RingError::kOk);
    CHECK_FALSE(e.writer.publish());  // packet 2 still unread
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    e.reader.release();
    REQUIRE(e.writer.write_inband(4, payload.data(), 32) == RingError::kOk);
    CHECK(e.writer.publish());
    CHECK(e.writer.counters().signals == 2);
    CHECK(e.writer.counters().publishes == 4);
}

TEST_CASE("ring: a draining reader masks signals and re-arms before sleeping", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(32, 14);
    e.reader.mask_signals();
    CHECK(e.ring.control().interrupt_mask == 1);
    REQUIRE(e.writer.write_inband(1, payload.data(), 32) == RingError::kOk);
    CHECK_FALSE(e.writer.publish());  // masked

    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(e.reader.arm_signal());  // consumed but not released: not safe to sleep
    e.reader.release();
    REQUIRE(e.writer.write_inband(2, payload.data(), 32) == RingError::kOk);
    CHECK_FALSE(e.writer.publish());  // still masked
    CHECK(e.reader.arm_signal());     // packet 2 slipped in: drain again
    CHECK(e.ring.control().interrupt_mask == 0);
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    e.reader.release();
    CHECK_FALSE(e.reader.arm_signal());  // empty: safe to sleep
    REQUIRE(e.writer.write_inband(3, payload.data(), 32) == RingError::kOk);
    CHECK(e.writer.publish());  // and the writer wakes it
}

TEST_CASE("ring: a polling reader sees published packets without consuming them", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(40, 15);
    e.reader.mask_signals();
    CHECK_FALSE(e.reader.has_data());
    REQUIRE(e.writer.write_inband(1, payload.data(), 40) == RingError::kOk);
    CHECK_FALSE(e.reader.has_data());  // written, not published
    CHECK_FALSE(e.writer.publish());
    CHECK(e.reader.has_data());
    CHECK(e.reader.has_data());  // still there: nothing was consumed
    CHECK(e.ring.control().interrupt_mask == 1);
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.transaction_id == 1);
    CHECK_FALSE(e.reader.has_data());
    e.ring.control().write_index = e.ring.data_size();  // a hostile writer: next() must report it
    CHECK(e.reader.has_data());
    CHECK(e.reader.next(packet) == RingError::kCorruptWriteIndex);
}

TEST_CASE("ring: a batch is published with one index store and read back with one release", "[vmbus][ring]") {
    Endpoints e(4);
    for (uint32_t i = 0; i < 50; ++i) {
        const auto payload = pattern(8 + i, i);
        REQUIRE(e.writer.write_inband(i, payload.data(), 8 + i) == RingError::kOk);
    }
    CHECK(e.writer.publish());
    CHECK(e.writer.counters().publishes == 1);
    IncomingPacket packet;
    for (uint32_t i = 0; i < 50; ++i) {
        REQUIRE(e.reader.next(packet) == RingError::kOk);
        CHECK(packet.transaction_id == i);
        CHECK(std::memcmp(read_payload(e.reader, packet).data(), pattern(8 + i, i).data(), 8 + i) == 0);
    }
    CHECK(e.reader.next(packet) == RingError::kEmpty);
    CHECK(e.ring.control().read_index == 0);  // nothing handed back yet
    e.reader.release();
    CHECK(e.ring.control().read_index == e.ring.control().write_index);
    CHECK(e.reader.counters().releases == 1);
    CHECK(e.reader.counters().packets == 50);
}

TEST_CASE("ring: unpublished packets can be discarded and unreleased ones re-read", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(16, 15);
    REQUIRE(e.writer.write_inband(1, payload.data(), 16) == RingError::kOk);
    e.writer.publish();
    REQUIRE(e.writer.write_inband(2, payload.data(), 16) == RingError::kOk);
    e.writer.discard_unpublished();
    REQUIRE(e.writer.write_inband(3, payload.data(), 16) == RingError::kOk);
    e.writer.publish();

    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.transaction_id == 1);
    e.reader.rewind();
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.transaction_id == 1);
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    CHECK(packet.transaction_id == 3);
}

TEST_CASE("ring: payload copies are bounded by the packet and refused after release", "[vmbus][ring]") {
    Endpoints e(1);
    const auto payload = pattern(24, 16);
    REQUIRE(e.writer.write_inband(1, payload.data(), 24) == RingError::kOk);
    e.writer.publish();
    IncomingPacket packet;
    REQUIRE(e.reader.next(packet) == RingError::kOk);
    uint8_t bytes[32];
    CHECK(e.reader.copy_payload(packet, 8, bytes, 16) == RingError::kOk);  // ends exactly at 24
    CHECK(std::memcmp(bytes, payload.data() + 8, 16) == 0);
    CHECK(e.reader.copy_payload(packet, 8, bytes, 17) == RingError::kBadArgument);
    CHECK(e.reader.copy_payload(packet, 0xffffffff, bytes, 2) == RingError::kBadArgument);
    CHECK(e.reader.copy_payload(packet, 24, nullptr, 0) == RingError::kOk);  // empty copy, no buffer
    e.reader.release();
    CHECK(e.reader.copy_payload(packet, 0, bytes, 1) == RingError::kBadArgument);
    IncomingPacket never_read;
    CHECK(e.reader.copy_payload(never_read, 0, bytes, 0) == RingError::kBadArgument);
}

TEST_CASE("ring: data areas from one page to 1 GiB are accepted, nothing outside", "[vmbus][ring]") {
    // attach() reads only the control page, so the data pointer is never touched here.
    ControlPage control{};
    uint8_t* const never_touched = reinterpret_cast<uint8_t*>(uintptr_t{0x1000});
    RingWriter writer;
    RingReader reader;
    ContiguousRingMemory largest(&control, never_touched, kMaxDataSize);
    CHECK(writer.attach(largest) == RingError::kOk);
    CHECK(reader.attach(largest) == RingError::kOk);
    CHECK(writer.max_packet_size() == kMaxDataSize - 8);
    ContiguousRingMemory too_large(&control, never_touched, kMaxDataSize + kDataPageSize);
    CHECK(writer.attach(too_large) == RingError::kBadMemory);
    ContiguousRingMemory smallest(&control, never_touched, kMinDataSize);
    CHECK(reader.attach(smallest) == RingError::kOk);
    ContiguousRingMemory half_page(&control, never_touched, kMinDataSize / 2);
    CHECK(reader.attach(half_page) == RingError::kBadMemory);
}

TEST_CASE("ring: malformed outgoing packets and bad memory are refused", "[vmbus][ring]") {
    Endpoints e(1);
    const uint64_t pfns[] = {1, 2};
    OutgoingPacket out;
    out.type = PacketType::kTransferPages;
    CHECK(e.writer.write(out) == RingError::kBadArgument);
    out.type = PacketType::kGpaDirect;  // without ranges
    CHECK(e.writer.write(out) == RingError::kBadArgument);
    const GpaRange bad_offset[] = {{10, 4096, pfns, 2}};
    out.ranges = bad_offset;
    out.range_count = 1;
    CHECK(e.writer.write(out) == RingError::kBadArgument);
    const GpaRange wrong_count[] = {{4097, 0, pfns, 1}};  // needs 2 PFNs
    out.ranges = wrong_count;
    CHECK(e.writer.write(out) == RingError::kBadArgument);
    out.type = PacketType::kInBand;  // in-band with ranges
    CHECK(e.writer.write(out) == RingError::kBadArgument);
    CHECK(e.ring.control().write_index == 0);

    RingWriter unattached;
    CHECK(unattached.write_inband(0, nullptr, 0) == RingError::kNotAttached);
    uint8_t page[4096];
    ControlPage control{};
    ContiguousRingMemory odd(&control, page, 4096 + 8);
    CHECK(unattached.attach(odd) == RingError::kBadMemory);
    ContiguousRingMemory tiny(&control, page, 0);
    RingReader reader;
    CHECK(reader.attach(tiny) == RingError::kBadMemory);
}
