// storvsp's protocol decisions without rings: initialization order, version negotiation,
// properties, sub-channel requests and every SRB-level check, at each limit and one past.
#include <catch2/catch.hpp>
#include <cstring>
#include <vector>

#include "services/storvsp/storvsp_protocol.h"

using namespace hvkvm::root::storvsp;
namespace wire = hvkvm::vmbus::services::storage;

namespace {

constexpr ControllerLimits kLimits{3, 1u << 20};

struct Packet {
    wire::Packet packet{};
    uint32_t size = wire::kPacketSize;
    bool completion_requested = true;
    std::vector<uint64_t> words;  // GPA-direct range words
    uint32_t range_count = 0;

    PacketView view() const {
        PacketView view;
        view.completion_requested = completion_requested;
        view.transaction_id = 77;
        view.payload = reinterpret_cast<const uint8_t*>(&packet);
        view.payload_size = size;
        view.gpa_direct = range_count != 0;
        view.ranges = hvkvm::vmbus::GpaRangeList{words.data(), static_cast<uint32_t>(words.size()), range_count};
        return view;
    }
};

Packet operation(wire::Operation op) {
    Packet packet;
    packet.packet.operation = op;
    packet.packet.flags = wire::kFlagRequestCompletion;
    return packet;
}

Packet version(uint16_t major_minor) {
    Packet packet = operation(wire::Operation::kQueryProtocolVersion);
    packet.packet.version.major_minor = major_minor;
    return packet;
}

uint32_t status_of(ProtocolSession& session, const Packet& packet, bool primary = true) {
    const Decision decision = session.accept(packet.view(), primary);
    REQUIRE(decision.verdict == Verdict::kAnswer);
    CHECK(decision.answer.operation == wire::Operation::kCompleteIo);
    CHECK(decision.transaction_id == 77);
    return decision.answer.status;
}

void make_ready(ProtocolSession& session) {
    REQUIRE(status_of(session, operation(wire::Operation::kBeginInitialization)) == wire::kStatusSuccess);
    REQUIRE(status_of(session, version(wire::kVersionWin10)) == wire::kStatusSuccess);
    REQUIRE(status_of(session, operation(wire::Operation::kQueryProperties)) == wire::kStatusSuccess);
    REQUIRE(status_of(session, operation(wire::Operation::kEndInitialization)) == wire::kStatusSuccess);
    REQUIRE(session.ready());
}

// An EXECUTE_SRB reading `length` bytes into one range of `range_bytes` at page offset 0.
Packet read_srb(uint32_t length, uint32_t range_bytes) {
    Packet packet = operation(wire::Operation::kExecuteSrb);
    wire::ScsiRequest& srb = packet.packet.srb;
    srb.cdb_length = 10;
    srb.cdb[0] = 0x28;
    srb.data_in = wire::kDataIn;
    srb.data_transfer_length = length;
    if (range_bytes != 0) {
        const hvkvm::vmbus::GpaRangeHeader header{range_bytes, 0};
        uint64_t word;
        std::memcpy(&word, &header, sizeof word);
        packet.words.push_back(word);
        for (uint64_t i = 0; i < hvkvm::vmbus::gpa_range_pfn_count(range_bytes, 0); ++i) packet.words.push_back(0x100 + i);
        packet.range_count = 1;
    }
    return packet;
}

uint8_t srb_status_of(ProtocolSession& session, const Packet& packet) {
    const Decision decision = session.accept(packet.view(), true);
    REQUIRE(decision.verdict == Verdict::kAnswer);
    CHECK(decision.answer_size == wire::kPacketSize);
    return decision.answer.srb.srb_status;
}

}  // namespace

TEST_CASE("storvsp protocol: Linux's initialization sequence, properties as configured", "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    CHECK(session.state() == InitState::kBeginInitialization);
    CHECK(status_of(session, operation(wire::Operation::kBeginInitialization)) == wire::kStatusSuccess);
    const Decision accepted = session.accept(version(wire::kVersionWin10).view(), true);
    CHECK(accepted.answer.status == wire::kStatusSuccess);
    CHECK(accepted.answer.version.major_minor == wire::kVersionWin10);
    CHECK(session.version() == wire::kVersionWin10);
    const Decision properties = session.accept(operation(wire::Operation::kQueryProperties).view(), true);
    REQUIRE(properties.answer.status == wire::kStatusSuccess);
    CHECK(properties.answer.properties.max_channel_count == 3);
    CHECK(properties.answer.properties.flags == wire::kChannelSupportsMultiChannel);
    CHECK(properties.answer.properties.max_transfer_bytes == (1u << 20));
    CHECK(status_of(session, operation(wire::Operation::kEndInitialization)) == wire::kStatusSuccess);
    CHECK(session.ready());
}

TEST_CASE("storvsp protocol: versions before Win8 are refused and the guest falls back", "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    status_of(session, operation(wire::Operation::kBeginInitialization));
    CHECK(status_of(session, version(wire::kVersionWin7)) == wire::kStatusRevisionMismatch);
    CHECK(status_of(session, version(wire::kVersionWin6)) == wire::kStatusRevisionMismatch);
    CHECK(status_of(session, version(0x0603)) == wire::kStatusRevisionMismatch);  // unknown, newer
    CHECK(session.state() == InitState::kQueryVersion);
    CHECK(status_of(session, version(wire::kVersionWin8)) == wire::kStatusSuccess);
    CHECK(session.version() == wire::kVersionWin8);

    ProtocolSession short_body(kLimits);
    status_of(short_body, operation(wire::Operation::kBeginInitialization));
    Packet truncated = version(wire::kVersionWin8_1);
    truncated.size = wire::kPacketHeaderSize + 3;  // one byte short of the version
    CHECK(status_of(short_body, truncated) == wire::kStatusInvalidParameter);
    truncated.size = wire::kPacketHeaderSize + 4;
    const Decision fits = short_body.accept(truncated.view(), true);
    CHECK(fits.answer.status == wire::kStatusSuccess);
    CHECK(fits.answer_size == wire::kPacketHeaderSize + 4);  // the answer is as long as the request
}

TEST_CASE("storvsp protocol: out-of-order and sub-channel initialization packets change nothing", "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    CHECK(status_of(session, operation(wire::Operation::kQueryProperties)) == wire::kStatusInvalidDeviceState);
    CHECK(status_of(session, operation(wire::Operation::kEndInitialization)) == wire::kStatusInvalidDeviceState);
    CHECK(status_of(session, version(wire::kVersionWin10)) == wire::kStatusInvalidDeviceState);
    CHECK(status_of(session, operation(wire::Operation::kBeginInitialization), false) == wire::kStatusInvalidDeviceState);
    CHECK(session.state() == InitState::kBeginInitialization);
    make_ready(session);
    CHECK(status_of(session, operation(wire::Operation::kBeginInitialization)) == wire::kStatusInvalidDeviceState);
    CHECK(session.ready());
    session.reset();  // the primary closed
    CHECK(session.state() == InitState::kBeginInitialization);
    CHECK(status_of(session, operation(wire::Operation::kBeginInitialization)) == wire::kStatusSuccess);
}

TEST_CASE("storvsp protocol: CREATE_SUB_CHANNELS up to the maximum, on the primary, after the properties",
          "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    Packet create = operation(wire::Operation::kCreateSubChannels);
    create.packet.sub_channel_count = 3;
    status_of(session, operation(wire::Operation::kBeginInitialization));
    status_of(session, version(wire::kVersionWin10));
    CHECK(status_of(session, create) == wire::kStatusInvalidDeviceState);  // before QUERY_PROPERTIES
    status_of(session, operation(wire::Operation::kQueryProperties));
    Decision decision = session.accept(create.view(), true);  // before END_INITIALIZATION is allowed
    REQUIRE(decision.verdict == Verdict::kCreateSubChannels);
    CHECK(decision.sub_channel_count == 3);
    session.finish_create_sub_channels(decision, true);
    CHECK(decision.answer.status == wire::kStatusSuccess);
    CHECK(session.sub_channels() == 3);
    create.packet.sub_channel_count = 4;
    CHECK(status_of(session, create) == wire::kStatusInvalidParameter);
    create.packet.sub_channel_count = 1;
    CHECK(status_of(session, create, false) == wire::kStatusInvalidDeviceState);  // not on a sub-channel
    decision = session.accept(create.view(), true);
    session.finish_create_sub_channels(decision, false);  // the VMBus server refused to offer
    CHECK(decision.answer.status == wire::kStatusUnsuccessful);
    Packet no_count = operation(wire::Operation::kCreateSubChannels);
    no_count.size = wire::kPacketHeaderSize + 1;
    CHECK(status_of(session, no_count) == wire::kStatusInvalidParameter);
}

TEST_CASE("storvsp protocol: packets that cannot be served are answered, or dropped without a completion flag",
          "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    Packet srb = read_srb(512, 512);
    CHECK(status_of(session, srb) == wire::kStatusInvalidDeviceState);  // not ready
    make_ready(session);
    Packet unflagged = srb;
    unflagged.completion_requested = false;
    CHECK(session.accept(unflagged.view(), true).verdict == Verdict::kDrop);
    Packet tiny = operation(wire::Operation::kBeginInitialization);
    tiny.size = wire::kPacketHeaderSize - 1;
    const Decision too_short = session.accept(tiny.view(), true);
    CHECK(too_short.answer.status == wire::kStatusInvalidParameter);
    CHECK(too_short.answer_size == wire::kPacketHeaderSize);
    for (uint32_t op : {0u, 1u, 2u, 11u, 12u, 14u, 0xffffffffu}) {
        CHECK(status_of(session, operation(static_cast<wire::Operation>(op))) == wire::kStatusInvalidDeviceRequest);
    }
    CHECK(status_of(session, operation(wire::Operation::kResetBus)) == wire::kStatusSuccess);
    CHECK(status_of(session, operation(wire::Operation::kResetLun), false) == wire::kStatusSuccess);
}

TEST_CASE("storvsp protocol: EXECUTE_SRB checks: size, CDB length, direction, transfer limit, page list",
          "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    make_ready(session);
    const uint32_t max = kLimits.max_transfer_bytes;

    const Packet largest = read_srb(max, max);
    Decision fits = session.accept(largest.view(), true);
    REQUIRE(fits.verdict == Verdict::kExecuteSrb);
    CHECK(fits.data.length == max);
    CHECK(fits.data.pfn_count == max / 4096);
    CHECK(fits.data.pfns[0] == 0x100);
    CHECK(srb_status_of(session, read_srb(max + 512, max + 512)) == wire::kSrbStatusInvalidRequest);

    Packet truncated = read_srb(512, 512);
    truncated.size = wire::kPacketSize - 1;
    CHECK(status_of(session, truncated) == wire::kStatusInvalidParameter);

    Packet cdb = read_srb(512, 512);
    cdb.packet.srb.cdb_length = 16;
    CHECK(session.accept(cdb.view(), true).verdict == Verdict::kExecuteSrb);
    cdb.packet.srb.cdb_length = 17;
    CHECK(srb_status_of(session, cdb) == wire::kSrbStatusInvalidRequest);
    cdb.packet.srb.cdb_length = 0;
    CHECK(srb_status_of(session, cdb) == wire::kSrbStatusInvalidRequest);

    Packet direction = read_srb(512, 512);
    direction.packet.srb.data_in = 3;
    CHECK(srb_status_of(session, direction) == wire::kSrbStatusInvalidRequest);
    direction.packet.srb.data_in = wire::kDataNone;  // data but no direction
    CHECK(srb_status_of(session, direction) == wire::kSrbStatusInvalidRequest);

    CHECK(srb_status_of(session, read_srb(512, 0)) == wire::kSrbStatusInvalidRequest);  // in-band with data
    CHECK(session.accept(read_srb(512, 512).view(), true).verdict == Verdict::kExecuteSrb);
    CHECK(srb_status_of(session, read_srb(512, 511)) == wire::kSrbStatusInvalidRequest);  // range shorter than the transfer
    const Packet larger_range = read_srb(512, 8192);  // a larger buffer than the transfer is fine
    const Decision prefix = session.accept(larger_range.view(), true);
    REQUIRE(prefix.verdict == Verdict::kExecuteSrb);
    CHECK(prefix.data.pfn_count == 1);  // only the pages the transfer touches

    Packet two_ranges = read_srb(512, 512);
    two_ranges.words.insert(two_ranges.words.end(), two_ranges.words.begin(), two_ranges.words.end());
    two_ranges.range_count = 2;
    CHECK(srb_status_of(session, two_ranges) == wire::kSrbStatusInvalidRequest);

    Packet no_data = read_srb(0, 0);
    no_data.packet.srb.data_in = wire::kDataNone;
    CHECK(session.accept(no_data.view(), true).verdict == Verdict::kExecuteSrb);
}

TEST_CASE("storvsp protocol: SRB answers carry status, sense and the vstor status", "[storage][storvsp-protocol]") {
    ProtocolSession session(kLimits);
    make_ready(session);
    Decision decision = session.accept(read_srb(4096, 4096).view(), true);
    decision.srb.lun = 5;
    const uint8_t sense[18] = {0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0};
    srb_answer(decision, SrbOutcome{2, wire::kSrbStatusError, 0, sense, sizeof sense});
    CHECK(decision.answer.status == wire::kStatusIoDeviceError);
    CHECK(decision.answer_size == wire::kPacketSize);
    CHECK(decision.answer.srb.srb_status == (wire::kSrbStatusError | wire::kSrbStatusAutosenseValid));
    CHECK(decision.answer.srb.scsi_status == 2);
    CHECK(decision.answer.srb.sense_info_length == 18);
    CHECK(decision.answer.srb.sense_data[12] == 0x11);
    CHECK(decision.answer.srb.lun == 5);
    CHECK(decision.answer.srb.data_transfer_length == 0);

    srb_answer(decision, SrbOutcome{0, wire::kSrbStatusSuccess, 4096, nullptr, 0});
    CHECK(decision.answer.status == wire::kStatusSuccess);
    CHECK(decision.answer.srb.srb_status == wire::kSrbStatusSuccess);
    CHECK(decision.answer.srb.data_transfer_length == 4096);
    CHECK(decision.answer.srb.sense_info_length == 0);

    CHECK(vstor_status_of(wire::kSrbStatusInvalidLun) == wire::kStatusDeviceDoesNotExist);
    CHECK(vstor_status_of(wire::kSrbStatusSelectionTimeout) == wire::kStatusDeviceNotConnected);
    CHECK(vstor_status_of(wire::kSrbStatusDataOverrun) == wire::kStatusBufferOverflow);
    CHECK(vstor_status_of(wire::kSrbStatusInvalidRequest) == wire::kStatusIoDeviceError);
}
