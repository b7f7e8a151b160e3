// The ring against a hostile peer: every index, descriptor field and range list the peer controls,
// at the exact limit (accepted) and one past it (refused as corruption, with nothing consumed).
#include <catch2/catch.hpp>
#include <cstring>

#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"
#include "vmbus/tests/ring_fixture.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::ring;
using hvkvm::vmbus::test::pattern;
using hvkvm::vmbus::test::TestRing;

namespace {

constexpr uint16_t kInBand = 6, kGpaDirect = 9, kCompletion = 0xb;

// A reader over a ring that the test, as the hostile writer, fills by hand.
struct HostileWriter {
    explicit HostileWriter(uint32_t data_pages = 1) : ring(data_pages) {
        ring.control().feature_bits = kFeaturePendingSendSize;
        REQUIRE(reader.attach(ring.memory()) == RingError::kOk);
    }
    void publish(uint32_t write_index) { ring.control().write_index = write_index; }
    RingError next() { return reader.next(packet, RangeBuffer{words, capacity}); }

    TestRing ring;
    RingReader reader;
    IncomingPacket packet;
    uint64_t words[8] = {};
    uint32_t capacity = 8;
};

void poke_gpa_direct(TestRing& ring, uint16_t offset8, uint16_t len8, uint32_t range_count,
                     std::initializer_list<uint64_t> range_words) {
    ring.poke_descriptor(0, kGpaDirect, offset8, len8);
    const GpaDirectHeader header{0, range_count};
    ring.poke(16, &header, sizeof(header));
    uint32_t offset = 24;
    for (uint64_t word : range_words) {
        ring.poke(offset, &word, 8);
        offset += 8;
    }
}

constexpr uint64_t range_header(uint32_t byte_count, uint32_t byte_offset) {
    return uint64_t{byte_offset} << 32 | byte_count;
}

}  // namespace

TEST_CASE("ring: reader refuses a write index out of range or unaligned", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.ring.poke_descriptor(0, kInBand, 2, 2);
    SECTION("4088 is the last valid index") {
        peer.publish(4088);
        CHECK(peer.next() == RingError::kOk);
    }
    SECTION("the data size itself is out of range") {
        peer.publish(4096);
        CHECK(peer.next() == RingError::kCorruptWriteIndex);
    }
    SECTION("unaligned") {
        peer.publish(28);
        CHECK(peer.next() == RingError::kCorruptWriteIndex);
    }
    SECTION("huge") {
        peer.publish(0xfffffff8);
        CHECK(peer.next() == RingError::kCorruptWriteIndex);
    }
}

TEST_CASE("ring: reader refuses a write index that moves backwards", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.ring.poke_descriptor(0, kInBand, 2, 2);
    peer.ring.poke_descriptor(24, kInBand, 2, 2);
    peer.publish(48);
    REQUIRE(peer.next() == RingError::kOk);
    REQUIRE(peer.next() == RingError::kOk);
    peer.publish(24);  // behind what was already published
    CHECK(peer.next() == RingError::kCorruptWriteIndex);
    CHECK(peer.next() == RingError::kCorruptWriteIndex);  // and stays refused, without looping
    peer.publish(48);  // no progress is not corruption
    CHECK(peer.next() == RingError::kEmpty);
}

TEST_CASE("ring: reader refuses published data shorter than a packet", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.ring.poke_descriptor(0, kInBand, 2, 2);
    SECTION("24 bytes: a bare descriptor and trailer") {
        peer.publish(24);
        CHECK(peer.next() == RingError::kOk);
        CHECK(peer.packet.payload_size == 0);
    }
    SECTION("16 bytes") {
        peer.publish(16);
        CHECK(peer.next() == RingError::kCorruptPacketLength);
    }
}

TEST_CASE("ring: reader bounds len8 by the published data", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.publish(64);
    SECTION("packet and trailer end exactly at the write index") {
        peer.ring.poke_descriptor(0, kInBand, 2, 7);
        CHECK(peer.next() == RingError::kOk);
        CHECK(peer.packet.payload_size == 40);
        CHECK(peer.next() == RingError::kEmpty);
    }
    SECTION("one unit past it") {
        peer.ring.poke_descriptor(0, kInBand, 2, 8);
        CHECK(peer.next() == RingError::kCorruptPacketLength);
    }
    SECTION("the largest len8") {
        peer.ring.poke_descriptor(0, kInBand, 2, 0xffff);
        CHECK(peer.next() == RingError::kCorruptPacketLength);
    }
}

TEST_CASE("ring: reader checks offset8 against the descriptor and len8", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.publish(64);
    SECTION("offset8 equal to len8: an empty payload") {
        peer.ring.poke_descriptor(0, kInBand, 7, 7);
        CHECK(peer.next() == RingError::kOk);
        CHECK(peer.packet.payload_size == 0);
    }
    SECTION("offset8 past len8") {
        peer.ring.poke_descriptor(0, kInBand, 8, 7);
        CHECK(peer.next() == RingError::kCorruptPacketOffset);
    }
    SECTION("offset8 inside the descriptor") {
        peer.ring.poke_descriptor(0, kInBand, 1, 7);
        CHECK(peer.next() == RingError::kCorruptPacketOffset);
    }
    SECTION("zero lengths") {
        peer.ring.poke_descriptor(0, kInBand, 0, 0);
        CHECK(peer.next() == RingError::kCorruptPacketOffset);
    }
}

TEST_CASE("ring: reader refuses unknown packet types and flags", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.publish(24);
    for (uint16_t type : {0, 1, 5, 7, 8, 0xa, 0xc, 0xffff}) {
        peer.ring.poke_descriptor(0, type, 2, 2);
        CHECK(peer.next() == RingError::kCorruptPacketType);
    }
    peer.ring.poke_descriptor(0, kCompletion, 2, 2, 1);
    CHECK(peer.next() == RingError::kOk);
    peer.reader.rewind();
    peer.ring.poke_descriptor(0, kCompletion, 2, 2, 2);
    CHECK(peer.next() == RingError::kCorruptPacketFlags);
    peer.ring.poke_descriptor(0, kInBand, 2, 2, 0x8000);
    CHECK(peer.next() == RingError::kCorruptPacketFlags);
}

TEST_CASE("ring: reader validates GPA-direct ranges in its own copy", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.publish(4088);  // plenty published; each case sets len8 to cover what it needs

    SECTION("a well-formed range with its PFNs exactly present") {
        poke_gpa_direct(peer.ring, 6, 6, 1, {range_header(8192, 0), 1, 2});
        REQUIRE(peer.next() == RingError::kOk);
        CHECK(peer.packet.ranges.range_count == 1);
        CHECK(peer.packet.ranges.word_count == 3);
        // The copy is what the caller walks: scribbling on the ring afterwards changes nothing.
        peer.ring.poke(24, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
        GpaRangeCursor cursor = peer.packet.ranges.cursor();
        GpaRange range;
        REQUIRE(cursor.next(range));
        CHECK(range.byte_count == 8192);
        CHECK(range.pfn_count == 2);
    }
    SECTION("one PFN short") {
        poke_gpa_direct(peer.ring, 5, 5, 1, {range_header(8193, 0), 1, 2});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("byte offset 4095 is the last in the page") {
        poke_gpa_direct(peer.ring, 5, 5, 1, {range_header(1, 4095), 7});
        CHECK(peer.next() == RingError::kOk);
    }
    SECTION("byte offset 4096 is past it") {
        poke_gpa_direct(peer.ring, 5, 5, 1, {range_header(1, 4096), 7});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("an empty range") {
        poke_gpa_direct(peer.ring, 5, 5, 1, {range_header(0, 0), 7});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("no ranges") {
        poke_gpa_direct(peer.ring, 5, 5, 0, {range_header(1, 0), 7});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("more ranges than the descriptor area can hold") {
        poke_gpa_direct(peer.ring, 7, 7, 3, {range_header(1, 0), 7, range_header(1, 0), 8});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
        poke_gpa_direct(peer.ring, 7, 7, 0xffffffff, {range_header(1, 0), 7, range_header(1, 0), 8});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("a byte count whose PFN count would wrap 32 bits") {
        poke_gpa_direct(peer.ring, 5, 5, 1, {range_header(0xffffffff, 4095), 7});
        CHECK(peer.next() == RingError::kCorruptGpaRanges);
    }
    SECTION("offset8 covering only the GPA-direct header leaves no room for a range") {
        poke_gpa_direct(peer.ring, 3, 5, 1, {range_header(1, 0), 7});
        CHECK(peer.reader.next(peer.packet, RangeBuffer{}) == RingError::kCorruptGpaRanges);
    }
    SECTION("offset8 too small for the GPA-direct header") {
        poke_gpa_direct(peer.ring, 2, 5, 1, {range_header(1, 0), 7});
        CHECK(peer.next() == RingError::kCorruptPacketOffset);
    }
    SECTION("the caller's range buffer bounds the descriptor area") {
        poke_gpa_direct(peer.ring, 12, 12, 1, {range_header(8 * 4096, 0), 1, 2, 3, 4, 5, 6, 7, 8});  // 9 words
        peer.capacity = 8;
        CHECK(peer.next() == RingError::kRangeBufferTooSmall);
        peer.capacity = 7;
        CHECK(peer.next() == RingError::kRangeBufferTooSmall);
        uint64_t words[9];
        CHECK(peer.reader.next(peer.packet, RangeBuffer{words, 9}) == RingError::kOk);
    }
}

TEST_CASE("ring: a refused packet is not consumed and the error repeats", "[vmbus][ring][hostile]") {
    HostileWriter peer;
    peer.ring.poke_descriptor(0, kInBand, 2, 2);
    peer.ring.poke_descriptor(24, 0x77, 2, 2);
    peer.publish(48);
    REQUIRE(peer.next() == RingError::kOk);
    CHECK(peer.next() == RingError::kCorruptPacketType);
    CHECK(peer.next() == RingError::kCorruptPacketType);
    CHECK(is_corruption(RingError::kCorruptPacketType));
    CHECK_FALSE(is_corruption(RingError::kFull));
    peer.reader.release();
    CHECK(peer.ring.control().read_index == 24);
}

TEST_CASE("ring: reader refuses corrupt indices when attaching", "[vmbus][ring][hostile]") {
    TestRing ring(1);
    RingReader reader;
    ring.control().write_index = 12;
    CHECK(reader.attach(ring.memory()) == RingError::kCorruptWriteIndex);
    ring.control().write_index = 0;
    ring.control().read_index = 8192;
    CHECK(reader.attach(ring.memory()) == RingError::kCorruptReadIndex);
    RingWriter writer;
    CHECK(writer.attach(ring.memory()) == RingError::kCorruptReadIndex);
    IncomingPacket packet;
    CHECK(reader.next(packet) == RingError::kNotAttached);
}

TEST_CASE("ring: writer refuses a read index that leaves the published data", "[vmbus][ring][hostile]") {
    TestRing ring(1);
    RingWriter writer;
    REQUIRE(writer.attach(ring.memory()) == RingError::kOk);
    const auto payload = pattern(1000, 1);
    for (int i = 0; i < 3; ++i) REQUIRE(writer.write_inband(i, payload.data(), 1000) == RingError::kOk);
    writer.publish();  // published [0, 3072)

    SECTION("moving exactly to the write index frees everything") {
        ring.control().read_index = 3072;
        CHECK(writer.write_inband(3, payload.data(), 1000) == RingError::kOk);
        CHECK(writer.write_inband(4, payload.data(), 1000) == RingError::kOk);
    }
    SECTION("moving one unit past it") {
        ring.control().read_index = 3080;
        CHECK(writer.write_inband(3, payload.data(), 1000) == RingError::kCorruptReadIndex);
        CHECK(writer.publish() == false);  // nothing was written
        CHECK(ring.control().write_index == 3072);
    }
    SECTION("unaligned") {
        ring.control().read_index = 1;
        CHECK(writer.write_inband(3, payload.data(), 1000) == RingError::kCorruptReadIndex);
    }
    SECTION("out of range") {
        ring.control().read_index = 4096;
        CHECK(writer.write_inband(3, payload.data(), 1000) == RingError::kCorruptReadIndex);
    }
    SECTION("moving backwards") {
        ring.control().read_index = 2048;
        REQUIRE(writer.write_inband(3, payload.data(), 1000) == RingError::kOk);  // sees 2048 freed
        writer.publish();
        ring.control().read_index = 1024;
        // The writer looks at the read index only when it needs room: the next packet still fits
        // in what it knows is free, the one after makes it look.
        REQUIRE(writer.write_inband(4, payload.data(), 1000) == RingError::kOk);
        CHECK(writer.write_inband(5, payload.data(), 1000) == RingError::kCorruptReadIndex);
    }
}

TEST_CASE("ring: hostile signalling fields only change whether a signal is sent", "[vmbus][ring][hostile]") {
    TestRing ring(1);
    RingWriter writer;
    RingReader reader;
    REQUIRE(writer.attach(ring.memory()) == RingError::kOk);
    REQUIRE(reader.attach(ring.memory()) == RingError::kOk);
    const auto payload = pattern(100, 2);
    ring.control().interrupt_mask = 0xdeadbeef;
    REQUIRE(writer.write_inband(1, payload.data(), 100) == RingError::kOk);
    CHECK_FALSE(writer.publish());
    ring.control().interrupt_mask = 0;
    ring.control().pending_send_size = 8;  // junk from a writer that wants nothing
    IncomingPacket packet;
    REQUIRE(reader.next(packet) == RingError::kOk);
    CHECK_FALSE(reader.release());  // had more than 8 bytes free before: no transition
    ring.control().write_index = 7;  // a corrupt write index seen while deciding on a signal
    ring.control().pending_send_size = 4000;
    CHECK_FALSE(reader.release());
    CHECK(reader.arm_signal());  // not safe to sleep: next() must report the corruption
    CHECK(reader.next(packet) == RingError::kCorruptWriteIndex);
}
