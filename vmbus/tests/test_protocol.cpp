// Channel messages: every type's encode/parse round trip in its direction, and refusal of
// malformed ones (size limits at exact fit and one past, wrong direction, unknown types, GPADL data).
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "vmbus/protocol/message_codec.h"

using namespace hvkvm::vmbus::protocol;

namespace {

template <typename Message>
std::vector<uint8_t> bytes_of(const Message& message, uint32_t size = sizeof(Message)) {
    MessageBuffer buffer = encode(message);
    std::vector<uint8_t> bytes(buffer.bytes, buffer.bytes + buffer.size);
    bytes.resize(size, 0xa5);  // longer messages carry junk after the fixed part
    return bytes;
}

template <typename Message>
ParseError parse_as_guest(const Message& message, uint32_t size, GuestMessage& parsed) {
    const auto bytes = bytes_of(message, size);
    return parse_guest_message(bytes.data(), size, parsed);
}

template <typename Message>
ParseError parse_as_host(const Message& message, uint32_t size, HostMessage& parsed) {
    const auto bytes = bytes_of(message, size);
    return parse_host_message(bytes.data(), size, parsed);
}

// Exact size accepted, one byte less refused, longer (up to 240) accepted, 241 refused.
template <typename Message, typename Parse>
void check_size_limits(const Message& message, Parse parse) {
    CHECK(parse(message, sizeof(Message)) == ParseError::kNone);
    CHECK(parse(message, sizeof(Message) - 1) == (sizeof(Message) - 1 < 8 ? ParseError::kShorterThanHeader : ParseError::kTruncated));
    CHECK(parse(message, sizeof(Message) + 1) == ParseError::kNone);
    CHECK(parse(message, kMaxMessageSize) == ParseError::kNone);
    CHECK(parse(message, kMaxMessageSize + 1) == ParseError::kLongerThanPayload);
}

constexpr Guid kScsiInterface{0xba6163d9, 0x04a1, 0x4d29, {0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f}};

}  // namespace

TEST_CASE("protocol: guest -> host messages round-trip", "[vmbus][protocol]") {
    GuestMessage parsed;
    auto guest = [&](const auto& message, uint32_t size) { return parse_as_guest(message, size, parsed); };

    InitiateContact contact{};
    contact.version_requested = kVersionWin10_5_3;
    contact.target_vcpu = 3;
    contact.interrupt_page = kVmbusMessageSint;
    contact.monitor_page1 = 0x1000;
    contact.monitor_page2 = 0x2000;
    check_size_limits(contact, guest);
    REQUIRE(guest(contact, sizeof(contact)) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kInitiateContact);
    CHECK(parsed.initiate_contact.version_requested == make_version(5, 3));
    CHECK(parsed.initiate_contact.target_vcpu == 3);
    CHECK(parsed.initiate_contact.interrupt_page == 2);
    CHECK(parsed.initiate_contact.monitor_page2 == 0x2000);

    check_size_limits(RequestOffers{}, guest);
    REQUIRE(guest(RequestOffers{}, 8) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kRequestOffers);

    OpenChannel open{};
    open.child_relid = 5;
    open.open_id = 6;
    open.ring_buffer_gpadl = 0xe1e10;
    open.target_vp = 1;
    open.downstream_ring_page_offset = 33;
    open.user_data[119] = 0x7e;
    check_size_limits(open, guest);
    REQUIRE(guest(open, sizeof(open)) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kOpenChannel);
    CHECK(parsed.open_channel.ring_buffer_gpadl == 0xe1e10);
    CHECK(parsed.open_channel.downstream_ring_page_offset == 33);
    CHECK(parsed.open_channel.user_data[119] == 0x7e);

    check_size_limits(CloseChannel{{}, 9}, guest);
    REQUIRE(guest(CloseChannel{{}, 9}, 12) == ParseError::kNone);
    CHECK(parsed.close_channel.child_relid == 9);

    check_size_limits(GpadlTeardown{{}, 9, 77}, guest);
    REQUIRE(guest(GpadlTeardown{{}, 9, 77}, 16) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kGpadlTeardown);
    CHECK(parsed.gpadl_teardown.gpadl == 77);

    check_size_limits(RelIdReleased{{}, 12}, guest);
    REQUIRE(guest(RelIdReleased{{}, 12}, 12) == ParseError::kNone);
    CHECK(parsed.relid_released.child_relid == 12);

    check_size_limits(Unload{}, guest);
    REQUIRE(guest(Unload{}, 8) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kUnload);
}

TEST_CASE("protocol: host -> guest messages round-trip", "[vmbus][protocol]") {
    HostMessage parsed;
    auto host = [&](const auto& message, uint32_t size) { return parse_as_host(message, size, parsed); };

    OfferChannel offer{};
    offer.interface_type = kScsiInterface;
    offer.interface_instance.data1 = 0x12345678;
    offer.flags = kOfferEnumerateDeviceInterface;
    offer.mmio_megabytes = 4;
    offer.user_defined[0] = 0xab;
    offer.sub_channel_index = 2;
    offer.child_relid = 14;
    offer.monitor_id = kNoMonitorId;
    offer.interrupt_flags = kDedicatedInterrupt;
    offer.connection_id = 0x200e;
    check_size_limits(offer, host);
    REQUIRE(host(offer, sizeof(offer)) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kOfferChannel);
    CHECK(parsed.offer_channel.interface_type == kScsiInterface);
    CHECK(parsed.offer_channel.interface_instance.data1 == 0x12345678);
    CHECK(parsed.offer_channel.child_relid == 14);
    CHECK(parsed.offer_channel.sub_channel_index == 2);
    CHECK(parsed.offer_channel.connection_id == 0x200e);
    CHECK(parsed.offer_channel.interrupt_flags == kDedicatedInterrupt);
    CHECK(parsed.offer_channel.user_defined[0] == 0xab);

    check_size_limits(RescindChannelOffer{{}, 14}, host);
    REQUIRE(host(RescindChannelOffer{{}, 14}, 12) == ParseError::kNone);
    CHECK(parsed.rescind_channel_offer.child_relid == 14);

    check_size_limits(AllOffersDelivered{}, host);
    REQUIRE(host(AllOffersDelivered{}, 8) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kAllOffersDelivered);

    check_size_limits(OpenResult{{}, 14, 3, kStatusUnsuccessful}, host);
    REQUIRE(host(OpenResult{{}, 14, 3, kStatusUnsuccessful}, 20) == ParseError::kNone);
    CHECK(parsed.open_result.open_id == 3);
    CHECK(parsed.open_result.status == kStatusUnsuccessful);

    check_size_limits(GpadlCreated{{}, 14, 99, 0}, host);
    REQUIRE(host(GpadlCreated{{}, 14, 99, 0}, 20) == ParseError::kNone);
    CHECK(parsed.gpadl_created.gpadl == 99);

    check_size_limits(GpadlTorndown{{}, 99}, host);
    REQUIRE(host(GpadlTorndown{{}, 99}, 12) == ParseError::kNone);
    CHECK(parsed.gpadl_torndown.gpadl == 99);

    const VersionResponse response{{}, 1, kConnectionSuccessful, 0, kMessageConnectionId};
    check_size_limits(response, host);
    REQUIRE(host(response, 16) == ParseError::kNone);
    CHECK(parsed.version_response.version_supported == 1);
    CHECK(parsed.version_response.message_connection_id == 1);

    check_size_limits(UnloadResponse{}, host);
    REQUIRE(host(UnloadResponse{}, 8) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kUnloadResponse);
}

TEST_CASE("protocol: each side refuses the other side's messages", "[vmbus][protocol]") {
    GuestMessage guest;
    HostMessage host;
    for (uint32_t number : {1u, 2u, 4u, 6u, 10u, 12u, 15u, 17u}) {
        MessageHeader header{static_cast<MessageType>(number), 0};
        std::vector<uint8_t> bytes(kMaxMessageSize);
        std::memcpy(bytes.data(), &header, sizeof(header));
        CHECK(parse_guest_message(bytes.data(), kMaxMessageSize, guest) == ParseError::kWrongDirection);
        CHECK(parse_host_message(bytes.data(), kMaxMessageSize, host) == ParseError::kNone);
    }
    for (uint32_t number : {3u, 5u, 7u, 11u, 13u, 14u, 16u}) {
        MessageHeader header{static_cast<MessageType>(number), 0};
        std::vector<uint8_t> bytes(kMaxMessageSize);
        std::memcpy(bytes.data(), &header, sizeof(header));
        CHECK(parse_host_message(bytes.data(), kMaxMessageSize, host) == ParseError::kWrongDirection);
        CHECK(parse_guest_message(bytes.data(), kMaxMessageSize, guest) == ParseError::kNone);
    }
    CHECK(guest.type == MessageType::kUnload);  // the last one parsed
}

TEST_CASE("protocol: unknown and unsupported types, and short headers, are refused", "[vmbus][protocol]") {
    GuestMessage guest;
    HostMessage host;
    std::vector<uint8_t> bytes(kMaxMessageSize, 0);
    auto with_type = [&](uint32_t number) {
        std::memcpy(bytes.data(), &number, 4);
        return bytes.data();
    };
    for (uint32_t number : {0u, 30u, 0x80000000u, 0xffffffffu}) {
        CHECK(parse_guest_message(with_type(number), 64, guest) == ParseError::kUnknownType);
        CHECK(parse_host_message(with_type(number), 64, host) == ParseError::kUnknownType);
    }
    for (uint32_t number : {18u, 21u, 22u, 23u, 24u, 29u}) {
        CHECK(parse_guest_message(with_type(number), 64, guest) == ParseError::kUnsupportedType);
        CHECK(parse_host_message(with_type(number), 64, host) == ParseError::kUnsupportedType);
    }
    CHECK(parse_guest_message(with_type(3), 7, guest) == ParseError::kShorterThanHeader);
    CHECK(parse_guest_message(with_type(3), 0, guest) == ParseError::kShorterThanHeader);
    CHECK(parse_host_message(with_type(1), 8, host) == ParseError::kTruncated);
    CHECK(host.type == MessageType::kInvalid);  // nothing was accepted
}

TEST_CASE("protocol: GPADL header messages carry whole words within range_buflen", "[vmbus][protocol]") {
    GpadlHeader fixed{};
    fixed.child_relid = 3;
    fixed.gpadl = 0xe1e10;
    fixed.range_count = 1;
    fixed.range_buflen = 27 * 8;
    std::vector<uint64_t> words(27);
    for (uint32_t i = 0; i < 27; ++i) words[i] = i + 100;
    GuestMessage parsed;

    MessageBuffer full = encode_gpadl_header(fixed, words.data(), 27);
    CHECK(full.size == 20 + 27 * 8);  // 236: a 28th word would pass 240
    REQUIRE(parse_guest_message(full.bytes, full.size, parsed) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kGpadlHeader);
    CHECK(parsed.gpadl_header.fixed.gpadl == 0xe1e10);
    CHECK(parsed.gpadl_header.word_count == 27);
    CHECK(parsed.gpadl_header.words[26] == 126);
    CHECK(encode_gpadl_header(fixed, words.data(), 28).size == 0);  // cannot be encoded

    SECTION("more words than range_buflen announces") {
        fixed.range_buflen = 26 * 8;
        MessageBuffer message = encode_gpadl_header(fixed, words.data(), 27);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kRangeDataOverflow);
        fixed.range_buflen = 27 * 8;
        message = encode_gpadl_header(fixed, words.data(), 27);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kNone);
    }
    SECTION("a partial word") {
        CHECK(parse_guest_message(full.bytes, 20 + 8 * 2 + 7, parsed) == ParseError::kPartialWord);
    }
    SECTION("no words") {
        CHECK(parse_guest_message(full.bytes, 20, parsed) == ParseError::kNoRangeData);
        CHECK(parse_guest_message(full.bytes, 19, parsed) == ParseError::kTruncated);
    }
    SECTION("no ranges") {
        fixed.range_count = 0;
        MessageBuffer message = encode_gpadl_header(fixed, words.data(), 2);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kNoRanges);
    }
    SECTION("range_buflen: two words is the least a range needs, and it counts whole words") {
        fixed.range_buflen = 16;
        MessageBuffer message = encode_gpadl_header(fixed, words.data(), 2);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kNone);
        fixed.range_buflen = 8;
        message = encode_gpadl_header(fixed, words.data(), 1);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kBadRangeBufferLength);
        fixed.range_buflen = 20;
        message = encode_gpadl_header(fixed, words.data(), 2);
        CHECK(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kBadRangeBufferLength);
    }
}

TEST_CASE("protocol: GPADL body messages carry 1 to 28 whole words", "[vmbus][protocol]") {
    std::vector<uint64_t> words(28, 0x5555);
    GpadlBody fixed{};
    fixed.gpadl = 8;
    GuestMessage parsed;
    MessageBuffer full = encode_gpadl_body(fixed, words.data(), 28);
    CHECK(full.size == kMaxMessageSize);
    REQUIRE(parse_guest_message(full.bytes, full.size, parsed) == ParseError::kNone);
    CHECK(parsed.type == MessageType::kGpadlBody);
    CHECK(parsed.gpadl_body.word_count == 28);
    CHECK(parsed.gpadl_body.fixed.gpadl == 8);
    CHECK(parse_guest_message(full.bytes, 24, parsed) == ParseError::kNone);
    CHECK(parsed.gpadl_body.word_count == 1);
    CHECK(parse_guest_message(full.bytes, 16, parsed) == ParseError::kNoRangeData);
    CHECK(parse_guest_message(full.bytes, 17, parsed) == ParseError::kPartialWord);
    CHECK(parse_guest_message(full.bytes, 15, parsed) == ParseError::kTruncated);
    CHECK(encode_gpadl_body(fixed, words.data(), 29).size == 0);
}

TEST_CASE("protocol: names exist for every type and error", "[vmbus][protocol]") {
    CHECK(std::string(message_type_name(MessageType::kGpadlTorndown)) == "GPADL_TORNDOWN");
    CHECK(std::string(message_type_name(static_cast<MessageType>(99))) == "unknown");
    CHECK(std::string(parse_error_name(ParseError::kWrongDirection)).find("other side") != std::string::npos);
    CHECK(is_supported_version(make_version(5, 3)));
    CHECK(is_supported_version(make_version(2, 4)));
    CHECK_FALSE(is_supported_version(make_version(1, 1)));  // Win7: Linux no longer offers it
    CHECK_FALSE(is_supported_version(make_version(6, 0)));
}
