// Integration-service messages (vmbus/services/ic_codec.h): framing, negotiation, UTF-16, KVP and
// guest-log bodies, each limit at exact fit (accepted) and one past (refused), and hostile input
// (wrong sizes, flags, counts, encodings) refused without reading past the packet.
#include <catch2/catch.hpp>
#include <cstring>
#include <string>
#include <vector>

#include "vmbus/services/ic_codec.h"

using namespace hvkvm::vmbus::services::ic;

namespace {

constexpr Versions kV3{{3, 0}, {3, 0}};

std::vector<uint8_t> bytes_of(const Packet& packet, uint32_t padded_to = 0) {
    std::vector<uint8_t> bytes(packet.bytes, packet.bytes + packet.size);
    if (padded_to > bytes.size()) bytes.resize(padded_to, 0);
    return bytes;
}

// A framed message with a `body_size`-byte body of 0x5a.
Packet packet_with_body(uint32_t body_size, uint8_t flags = kFlagTransaction | kFlagRequest) {
    std::vector<uint8_t> body(body_size, 0x5a);
    Header header = request_header(MessageType::kHeartbeat, kV3, 7);
    header.flags = flags;
    Packet packet;
    REQUIRE(build_packet(packet, header, body.data(), body_size));
    return packet;
}

template <typename Field>
void poke(std::vector<uint8_t>& bytes, size_t offset, Field value) {
    std::memcpy(bytes.data() + offset, &value, sizeof value);
}

IcError parse(const std::vector<uint8_t>& bytes, Message& message) {
    return parse_message(bytes.data(), static_cast<uint32_t>(bytes.size()), message);
}

constexpr size_t kPipeSizeAt = offsetof(PipeHeader, size);
constexpr size_t kMessageSizeAt = sizeof(PipeHeader) + offsetof(Header, message_size);
constexpr size_t kFlagsAt = sizeof(PipeHeader) + offsetof(Header, flags);
constexpr size_t kBodyAt = kFramingBytes;

std::u16string utf16(const std::vector<uint8_t>& bytes) {
    std::u16string text;
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) text.push_back(static_cast<char16_t>(bytes[i] | bytes[i + 1] << 8));
    return text;
}

int32_t decode(const std::vector<uint16_t>& units, std::string& out, uint32_t capacity = 4096) {
    std::vector<uint8_t> bytes;
    for (uint16_t unit : units) bytes.push_back(static_cast<uint8_t>(unit)), bytes.push_back(static_cast<uint8_t>(unit >> 8));
    std::vector<char> text(capacity);
    const int32_t length = utf16_to_utf8(bytes.data(), static_cast<uint32_t>(bytes.size()), text.data(), capacity);
    if (length >= 0) out.assign(text.data(), static_cast<size_t>(length));
    return length;
}

uint32_t encode(const std::string& text, std::vector<uint8_t>& out, uint32_t capacity) {
    out.assign(capacity, 0xee);
    return utf8_to_utf16(text.data(), static_cast<uint32_t>(text.size()), out.data(), capacity);
}

}  // namespace

TEST_CASE("ic: a framed request parses back to its header and body", "[ic]") {
    Packet packet;
    const HeartbeatMessage beat{41, 0, 0};
    REQUIRE(build_packet(packet, request_header(MessageType::kHeartbeat, kV3, 9), &beat, sizeof beat));
    CHECK(packet.size == kFramingBytes + sizeof beat);
    Message message;
    REQUIRE(parse_message(packet.bytes, packet.size, message) == IcError::kNone);
    CHECK(message.header.type == MessageType::kHeartbeat);
    CHECK(message.header.framework_version == Version{3, 0});
    CHECK(message.header.transaction_id == 9);
    CHECK(message.is_request());
    CHECK(message.is_transaction());
    HeartbeatMessage back;
    REQUIRE(read_body(message, back) == IcError::kNone);
    CHECK(back.sequence == 41);
}

TEST_CASE("ic: packet size limits: the framing alone fits, one byte less does not; the largest fits, one unit more does not", "[ic][hostile]") {
    Message message;
    auto minimal = bytes_of(packet_with_body(0));
    CHECK(minimal.size() == kFramingBytes);
    CHECK(parse(minimal, message) == IcError::kNone);
    minimal.pop_back();
    CHECK(parse(minimal, message) == IcError::kTooShort);

    auto largest = bytes_of(packet_with_body(kMaxBody));
    CHECK(largest.size() == kMaxPacketPayload);
    CHECK(parse(largest, message) == IcError::kNone);
    largest.resize(kMaxPacketPayload + 8, 0);
    CHECK(parse(largest, message) == IcError::kTooLong);
}

TEST_CASE("ic: ring padding after the pipe's data is accepted and ignored", "[ic]") {
    const auto padded = bytes_of(packet_with_body(16), kFramingBytes + 16 + 8);
    Message message;
    REQUIRE(parse(padded, message) == IcError::kNone);
    CHECK(message.body_size == 16);
}

TEST_CASE("ic: the pipe header must be a data packet whose size fits the packet and holds an IC header", "[ic][hostile]") {
    Message message;
    auto bytes = bytes_of(packet_with_body(16));
    poke<uint32_t>(bytes, 0, 2);  // PIPE_PACKET_TYPE_PARTIAL
    CHECK(parse(bytes, message) == IcError::kBadPipeHeader);

    bytes = bytes_of(packet_with_body(16));
    poke<uint32_t>(bytes, kPipeSizeAt, static_cast<uint32_t>(bytes.size() - sizeof(PipeHeader)));  // exact
    CHECK(parse(bytes, message) == IcError::kNone);
    poke<uint32_t>(bytes, kPipeSizeAt, static_cast<uint32_t>(bytes.size() - sizeof(PipeHeader) + 1));
    CHECK(parse(bytes, message) == IcError::kBadPipeHeader);
    poke<uint32_t>(bytes, kPipeSizeAt, 0xffffffff);
    CHECK(parse(bytes, message) == IcError::kBadPipeHeader);
    poke<uint32_t>(bytes, kPipeSizeAt, sizeof(Header) - 1);
    CHECK(parse(bytes, message) == IcError::kBadPipeHeader);
}

TEST_CASE("ic: message_size may reach the end of the pipe's data, not one byte past", "[ic][hostile]") {
    Message message;
    auto bytes = bytes_of(packet_with_body(16));
    poke<uint16_t>(bytes, kMessageSizeAt, 16);
    CHECK(parse(bytes, message) == IcError::kNone);
    poke<uint16_t>(bytes, kMessageSizeAt, 17);
    CHECK(parse(bytes, message) == IcError::kBadMessageSize);
    poke<uint16_t>(bytes, kMessageSizeAt, 0xffff);
    CHECK(parse(bytes, message) == IcError::kBadMessageSize);
    poke<uint16_t>(bytes, kMessageSizeAt, 0);
    REQUIRE(parse(bytes, message) == IcError::kNone);
    HeartbeatMessage beat;
    CHECK(read_body(message, beat) == IcError::kBadBody);  // a body too short for its type
}

TEST_CASE("ic: flags: exactly one of request and response, no unknown bits", "[ic][hostile]") {
    Message message;
    for (uint8_t flags : {uint8_t{kFlagRequest}, uint8_t{kFlagResponse}, uint8_t{kFlagTransaction | kFlagRequest},
                          uint8_t{kFlagTransaction | kFlagResponse}}) {
        auto bytes = bytes_of(packet_with_body(0, flags));
        CHECK(parse(bytes, message) == IcError::kNone);
    }
    for (uint8_t flags : {uint8_t{0}, uint8_t{kFlagTransaction}, uint8_t{kFlagRequest | kFlagResponse}, uint8_t{0x8 | kFlagRequest},
                          uint8_t{0x80 | kFlagResponse}}) {
        auto bytes = bytes_of(packet_with_body(0));
        bytes[kFlagsAt] = flags;
        CHECK(parse(bytes, message) == IcError::kBadFlags);
    }
}

TEST_CASE("ic: fixed bodies: exact size accepted, one byte short refused, longer accepted", "[ic][hostile]") {
    Message message;
    for (uint32_t size : {uint32_t{sizeof(HeartbeatMessage)}, uint32_t{sizeof(HeartbeatMessage) + 1}}) {
        const auto bytes = bytes_of(packet_with_body(size));
        REQUIRE(parse(bytes, message) == IcError::kNone);
        HeartbeatMessage beat;
        CHECK(read_body(message, beat) == IcError::kNone);
    }
    const auto bytes = bytes_of(packet_with_body(sizeof(HeartbeatMessage) - 1));
    REQUIRE(parse(bytes, message) == IcError::kNone);
    HeartbeatMessage beat;
    CHECK(read_body(message, beat) == IcError::kBadBody);
}

TEST_CASE("ic: a response carries the request's header with response flags and a status", "[ic]") {
    Packet request;
    const HeartbeatMessage beat{5, 0, 0};
    REQUIRE(build_packet(request, request_header(MessageType::kHeartbeat, kV3, 3), &beat, sizeof beat));
    Message parsed;
    REQUIRE(parse_message(request.bytes, request.size, parsed) == IcError::kNone);
    Packet response;
    const HeartbeatMessage answer{6, static_cast<uint32_t>(ApplicationState::kHealthy), 0};
    REQUIRE(build_response(response, parsed.header, kStatusFail, &answer, sizeof answer));
    Message back;
    REQUIRE(parse_message(response.bytes, response.size, back) == IcError::kNone);
    CHECK(back.is_response());
    CHECK(back.is_transaction());
    CHECK(back.header.status == kStatusFail);
    CHECK(back.header.transaction_id == 3);
    CHECK(back.header.message_version == kV3.message);
}

TEST_CASE("ic: negotiation: the guest picks the highest versions both support; the host accepts only what it offered", "[ic]") {
    Packet request;
    REQUIRE(build_negotiate_request(request, kFrameworks, message_versions(kShutdown)));
    Message offered;
    REQUIRE(parse_message(request.bytes, request.size, offered) == IcError::kNone);
    CHECK(offered.header.type == MessageType::kNegotiate);

    const Version guest_frameworks[] = {{3, 0}, {1, 0}, {7, 0}};
    const Version guest_shutdown[] = {{1, 0}, {3, 0}, {9, 9}};
    Versions chosen;
    REQUIRE(choose_versions(offered, list_of(guest_frameworks), list_of(guest_shutdown), chosen) == IcError::kNone);
    CHECK(chosen.framework == Version{3, 0});
    CHECK(chosen.message == Version{3, 0});  // 3.2 is offered but the guest stops at 3.0

    Packet response;
    REQUIRE(build_negotiate_response(response, offered.header, &chosen));
    Message answer;
    REQUIRE(parse_message(response.bytes, response.size, answer) == IcError::kNone);
    Versions agreed;
    REQUIRE(read_negotiate_response(answer, kFrameworks, message_versions(kShutdown), agreed) == IcError::kNone);
    CHECK(agreed.message == Version{3, 0});

    const Version only_two[] = {{2, 0}};
    CHECK(choose_versions(offered, kFrameworks, list_of(only_two), chosen) == IcError::kNoCommonVersion);
}

TEST_CASE("ic: negotiation answers naming nothing, two pairs, or a version not offered are refused", "[ic][hostile]") {
    Packet request;
    REQUIRE(build_negotiate_request(request, kFrameworks, message_versions(kHeartbeat)));
    Message offered;
    REQUIRE(parse_message(request.bytes, request.size, offered) == IcError::kNone);
    Versions agreed;

    Packet none;
    REQUIRE(build_negotiate_response(none, offered.header, nullptr));
    Message answer;
    REQUIRE(parse_message(none.bytes, none.size, answer) == IcError::kNone);
    CHECK(read_negotiate_response(answer, kFrameworks, message_versions(kHeartbeat), agreed) == IcError::kNoCommonVersion);

    const Versions not_offered{{3, 0}, {4, 0}};
    Packet wrong;
    REQUIRE(build_negotiate_response(wrong, offered.header, &not_offered));
    REQUIRE(parse_message(wrong.bytes, wrong.size, answer) == IcError::kNone);
    CHECK(read_negotiate_response(answer, kFrameworks, message_versions(kHeartbeat), agreed) == IcError::kNotOffered);

    const Versions good{{3, 0}, {3, 0}};
    Packet two;
    REQUIRE(build_negotiate_response(two, offered.header, &good));
    auto bytes = bytes_of(two);
    poke<uint16_t>(bytes, kBodyAt, 2);  // two framework versions
    REQUIRE(parse(bytes, answer) == IcError::kNone);
    CHECK(read_negotiate_response(answer, kFrameworks, message_versions(kHeartbeat), agreed) == IcError::kBadBody);

    bytes = bytes_of(two);
    poke<uint16_t>(bytes, kMessageSizeAt, kNegotiateResponseBody - 1);  // the second version cut off
    REQUIRE(parse(bytes, answer) == IcError::kNone);
    CHECK(read_negotiate_response(answer, kFrameworks, message_versions(kHeartbeat), agreed) == IcError::kBadBody);
}

TEST_CASE("ic: negotiation requests: 16 versions of a kind accepted, 17 refused; a list longer than the body refused", "[ic][hostile]") {
    std::vector<Version> many(kMaxNegotiateVersions, Version{3, 0});
    Packet request;
    REQUIRE(build_negotiate_request(request, kFrameworks, {many.data(), kMaxNegotiateVersions}));
    CHECK_FALSE(build_negotiate_request(request, kFrameworks, {many.data(), 0}));
    Message offered;
    REQUIRE(parse_message(request.bytes, request.size, offered) == IcError::kNone);
    Versions chosen;
    CHECK(choose_versions(offered, kFrameworks, message_versions(kHeartbeat), chosen) == IcError::kNone);

    auto bytes = bytes_of(request);
    poke<uint16_t>(bytes, kBodyAt + 2, kMaxNegotiateVersions + 1);
    REQUIRE(parse(bytes, offered) == IcError::kNone);
    CHECK(choose_versions(offered, kFrameworks, message_versions(kHeartbeat), chosen) == IcError::kTooManyVersions);

    bytes = bytes_of(request);
    poke<uint16_t>(bytes, kMessageSizeAt, static_cast<uint16_t>(offered.body_size - 1));
    REQUIRE(parse(bytes, offered) == IcError::kNone);
    CHECK(choose_versions(offered, kFrameworks, message_versions(kHeartbeat), chosen) == IcError::kBadBody);
}

TEST_CASE("ic: UTF-8 to UTF-16 and back, 1- to 4-byte sequences", "[ic][utf16]") {
    const std::string text = "key \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";  // "key é€😀"
    std::vector<uint8_t> wire;
    const uint32_t bytes = encode(text, wire, 512);
    REQUIRE(bytes == 2 * (4 + 1 + 1 + 2) + 2);
    CHECK(utf16(std::vector<uint8_t>(wire.begin(), wire.begin() + bytes)) == std::u16string(u"key é€😀") + u'\0');
    std::string back;
    std::vector<uint16_t> units;
    for (size_t i = 0; i < bytes; i += 2) units.push_back(static_cast<uint16_t>(wire[i] | wire[i + 1] << 8));
    REQUIRE(decode(units, back) == static_cast<int32_t>(text.size()));
    CHECK(back == text);
}

TEST_CASE("ic: invalid UTF-8 is refused: overlong, surrogates, beyond U+10FFFF, cut short, NUL", "[ic][utf16][hostile]") {
    std::vector<uint8_t> wire;
    for (const std::string& bad : {std::string("\xc0\x80"), std::string("\xe0\x80\x80"), std::string("\xed\xa0\x80"),
                                  std::string("\xf4\x90\x80\x80"), std::string("ab\xe2\x82"), std::string("a\0b", 3),
                                  std::string("\x80"), std::string("\xff")})
        CHECK(encode(bad, wire, 512) == 0);
}

TEST_CASE("ic: invalid UTF-16 is refused: odd size, lone surrogates", "[ic][utf16][hostile]") {
    std::string out;
    CHECK(decode({0xd83d}, out) == -1);          // a high surrogate at the end
    CHECK(decode({0xd83d, 0x0041}, out) == -1);  // followed by no low surrogate
    CHECK(decode({0xde00, 0x0041}, out) == -1);  // a low surrogate first
    CHECK(decode({0x0041, 0x0000, 0xd800}, out) == 1);  // what follows the NUL is not read
    const uint8_t odd[] = {0x41, 0x00, 0x42};
    char text[8];
    CHECK(utf16_to_utf8(odd, 3, text, sizeof text) == -1);
}

TEST_CASE("ic: KVP key and value limits: 255 and 1023 characters fit, one more does not", "[ic][kvp][hostile]") {
    std::vector<uint8_t> wire;
    CHECK(encode(std::string(kKvpMaxKeyUnits, 'k'), wire, kKvpMaxKeyBytes) == kKvpMaxKeyBytes);
    CHECK(encode(std::string(kKvpMaxKeyUnits + 1, 'k'), wire, kKvpMaxKeyBytes) == 0);
    CHECK(encode(std::string(kKvpMaxValueUnits, 'v'), wire, kKvpMaxValueBytes) == kKvpMaxValueBytes);
    CHECK(encode(std::string(kKvpMaxValueUnits + 1, 'v'), wire, kKvpMaxValueBytes) == 0);

    // The longest key in UTF-8: 255 three-byte characters fill KvpKeyText exactly.
    std::vector<uint16_t> euros(kKvpMaxKeyUnits, 0x20ac);
    std::string out;
    CHECK(decode(euros, out, kKvpMaxKeyUtf8 + 1) == static_cast<int32_t>(kKvpMaxKeyUtf8));
    CHECK(decode(euros, out, kKvpMaxKeyUtf8) == -1);
}

namespace {

KvpRecord record(KvpOperation operation, KvpPool pool, const std::string& key = "", const std::string& value = "") {
    KvpRecord r;
    r.operation = operation;
    r.pool = pool;
    REQUIRE(r.key.assign(key.data(), static_cast<uint32_t>(key.size())));
    REQUIRE(r.value.assign(value.data(), static_cast<uint32_t>(value.size())));
    return r;
}

Message parsed(const Packet& packet) {
    Message message;
    REQUIRE(parse_message(packet.bytes, packet.size, message) == IcError::kNone);
    return message;
}

// The guest's side: parses the request and answers it with `answer` under `status`.
Packet answer_kvp(const Packet& request, uint32_t status, const KvpRecord& answer) {
    const Message message = parsed(request);
    Packet response;
    REQUIRE(build_kvp_response(response, message, status, answer));
    return response;
}

}  // namespace

TEST_CASE("ic: KVP set, get and enumerate round trips", "[ic][kvp]") {
    const KvpRecord set = record(KvpOperation::kSet, KvpPool::kExternal, "HostName", "build-\xc3\xa9");
    Packet request;
    REQUIRE(build_kvp_request(request, kV3, 1, set));
    CHECK(parsed(request).body_size == kKvpGetSetMessage);
    KvpRecord seen;
    REQUIRE(read_kvp_request(parsed(request), seen) == IcError::kNone);
    CHECK(seen.operation == KvpOperation::kSet);
    CHECK(std::string(seen.key.bytes, seen.key.size) == "HostName");
    CHECK(std::string(seen.value.bytes, seen.value.size) == "build-\xc3\xa9");

    const KvpRecord get = record(KvpOperation::kGet, KvpPool::kAuto, "OSName");
    REQUIRE(build_kvp_request(request, kV3, 2, get));
    REQUIRE(read_kvp_request(parsed(request), seen) == IcError::kNone);
    CHECK(std::string(seen.key.bytes) == "OSName");
    const Packet got = answer_kvp(request, kStatusSuccess, record(KvpOperation::kGet, KvpPool::kAuto, "OSName", "hvkvm"));
    KvpRecord answer;
    REQUIRE(read_kvp_response(parsed(got), get, answer) == IcError::kNone);
    CHECK(std::string(answer.value.bytes) == "hvkvm");

    KvpRecord enumerate = record(KvpOperation::kEnumerate, KvpPool::kGuest);
    enumerate.index = 3;
    REQUIRE(build_kvp_request(request, kV3, 3, enumerate));
    REQUIRE(read_kvp_request(parsed(request), seen) == IcError::kNone);
    CHECK(seen.index == 3);
    KvpRecord third = record(KvpOperation::kEnumerate, KvpPool::kGuest, "k3", "v3");
    third.index = 3;
    REQUIRE(read_kvp_response(parsed(answer_kvp(request, kStatusSuccess, third)), enumerate, answer) == IcError::kNone);
    CHECK(std::string(answer.key.bytes) == "k3");
    CHECK(std::string(answer.value.bytes) == "v3");

    // The end of an enumeration: a status and no strings.
    REQUIRE(read_kvp_response(parsed(answer_kvp(request, kStatusNoMoreItems, enumerate)), enumerate, answer) == IcError::kNone);
    CHECK(answer.key.size == 0);
}

TEST_CASE("ic: KVP answers for another operation, pool or enumeration index are refused", "[ic][kvp][hostile]") {
    KvpRecord enumerate = record(KvpOperation::kEnumerate, KvpPool::kGuest);
    enumerate.index = 2;
    Packet request;
    REQUIRE(build_kvp_request(request, kV3, 1, enumerate));
    KvpRecord answer;
    KvpRecord other = record(KvpOperation::kEnumerate, KvpPool::kGuest, "k", "v");
    other.index = 5;
    CHECK(read_kvp_response(parsed(answer_kvp(request, kStatusSuccess, other)), enumerate, answer) == IcError::kBadBody);
    KvpRecord other_pool = record(KvpOperation::kEnumerate, KvpPool::kAuto, "k", "v");
    other_pool.index = 2;
    CHECK(read_kvp_response(parsed(answer_kvp(request, kStatusSuccess, other_pool)), enumerate, answer) == IcError::kBadBody);
    const KvpRecord get = record(KvpOperation::kGet, KvpPool::kGuest, "k", "v");
    CHECK(read_kvp_response(parsed(answer_kvp(request, kStatusSuccess, get)), enumerate, answer) == IcError::kBadBody);
}

TEST_CASE("ic: KVP strings claimed longer than their field, odd, empty or of an unknown type are refused", "[ic][kvp][hostile]") {
    const KvpRecord get = record(KvpOperation::kGet, KvpPool::kGuest, "k");
    Packet request;
    REQUIRE(build_kvp_request(request, kV3, 1, get));
    const Packet good = answer_kvp(request, kStatusSuccess, record(KvpOperation::kGet, KvpPool::kGuest, "k", "value"));
    const size_t value_at = kBodyAt + sizeof(KvpHeader);
    KvpRecord answer;
    auto check_value = [&](uint32_t type, uint32_t size, IcError expected) {
        auto bytes = bytes_of(good);
        poke<uint32_t>(bytes, value_at + offsetof(KvpValue, value_type), type);
        poke<uint32_t>(bytes, value_at + offsetof(KvpValue, value_size), size);
        Message message;
        REQUIRE(parse(bytes, message) == IcError::kNone);
        CHECK(read_kvp_response(message, get, answer) == expected);
    };
    check_value(1, kKvpMaxValueBytes, IcError::kNone);  // the whole field (the NUL ends the text)
    check_value(1, kKvpMaxValueBytes + 1, IcError::kBadString);
    check_value(1, 0xffffffff, IcError::kBadString);
    check_value(1, 11, IcError::kBadString);  // odd
    check_value(3, 12, IcError::kBadValueType);  // REG_BINARY
    check_value(4, 4, IcError::kNone);           // a DWORD, as decimal text
    check_value(4, 8, IcError::kBadString);
    check_value(11, 8, IcError::kNone);

    // The guest's side: a request whose key is empty, or whose key_size runs past the field.
    auto bytes = bytes_of(request);
    poke<uint32_t>(bytes, value_at + offsetof(KvpValue, key_size), kKvpMaxKeyBytes + 1);
    Message message;
    REQUIRE(parse(bytes, message) == IcError::kNone);
    KvpRecord seen;
    CHECK(read_kvp_request(message, seen) == IcError::kBadString);
    poke<uint32_t>(bytes, value_at + offsetof(KvpValue, key_size), 0);
    REQUIRE(parse(bytes, message) == IcError::kNone);
    CHECK(read_kvp_request(message, seen) == IcError::kBadString);
}

TEST_CASE("ic: KVP numbers decode as decimal text", "[ic][kvp]") {
    const KvpRecord get = record(KvpOperation::kGet, KvpPool::kGuest, "n");
    Packet request;
    REQUIRE(build_kvp_request(request, kV3, 1, get));
    auto bytes = bytes_of(answer_kvp(request, kStatusSuccess, record(KvpOperation::kGet, KvpPool::kGuest, "n", "x")));
    const size_t value_at = kBodyAt + sizeof(KvpHeader);
    poke<uint32_t>(bytes, value_at + offsetof(KvpValue, value_type), 11);
    poke<uint32_t>(bytes, value_at + offsetof(KvpValue, value_size), 8);
    poke<uint64_t>(bytes, value_at + offsetof(KvpValue, value), 18446744073709551615ull);
    Message message;
    REQUIRE(parse(bytes, message) == IcError::kNone);
    KvpRecord answer;
    REQUIRE(read_kvp_response(message, get, answer) == IcError::kNone);
    CHECK(std::string(answer.value.bytes) == "18446744073709551615");
}

TEST_CASE("ic: KVP requests: each operation's size fits, one byte less does not; IP operations and unknown pools are unsupported", "[ic][kvp][hostile]") {
    for (KvpOperation operation : {KvpOperation::kGet, KvpOperation::kSet, KvpOperation::kDelete, KvpOperation::kEnumerate}) {
        Packet request;
        REQUIRE(build_kvp_request(request, kV3, 1, record(operation, KvpPool::kExternal, "k", "v")));
        auto bytes = bytes_of(request);
        KvpRecord seen;
        Message message;
        REQUIRE(parse(bytes, message) == IcError::kNone);
        CHECK(message.body_size == kvp_message_size(operation));
        CHECK(read_kvp_request(message, seen) == IcError::kNone);
        poke<uint16_t>(bytes, kMessageSizeAt, static_cast<uint16_t>(kvp_message_size(operation) - 1));
        REQUIRE(parse(bytes, message) == IcError::kNone);
        CHECK(read_kvp_request(message, seen) == IcError::kBadBody);
    }
    Packet request;
    REQUIRE(build_kvp_request(request, kV3, 1, record(KvpOperation::kGet, KvpPool::kExternal, "k")));
    auto bytes = bytes_of(request);
    bytes[kBodyAt] = static_cast<uint8_t>(KvpOperation::kGetIpInfo);
    Message message;
    KvpRecord seen;
    REQUIRE(parse(bytes, message) == IcError::kNone);
    CHECK(read_kvp_request(message, seen) == IcError::kUnsupported);
    CHECK(seen.operation == KvpOperation::kGetIpInfo);  // named, so the answer can say not supported
    bytes = bytes_of(request);
    bytes[kBodyAt + 1] = 4;  // "auto internal" is never exchanged
    REQUIRE(parse(bytes, message) == IcError::kNone);
    CHECK(read_kvp_request(message, seen) == IcError::kUnsupported);
}

TEST_CASE("ic: guest log lines: 480 bytes fit, longer lines are cut at a character boundary; empty ones are refused", "[ic][guest-log]") {
    Packet packet;
    const std::string full(kGuestLogMaxText, 'x');
    REQUIRE(build_guest_log(packet, kV3, GuestLogLevel::kWarning, 2, full.data(), kGuestLogMaxText));
    GuestLogLine line;
    REQUIRE(read_guest_log(parsed(packet), line) == IcError::kNone);
    CHECK(line.size == kGuestLogMaxText);
    CHECK(line.level == GuestLogLevel::kWarning);
    CHECK(line.dropped == 2);
    CHECK_FALSE(parsed(packet).is_transaction());

    std::string cut(kGuestLogMaxText - 1, 'y');
    cut += "\xe2\x82\xac";  // a euro sign straddling the limit
    REQUIRE(build_guest_log(packet, kV3, GuestLogLevel::kInfo, 0, cut.data(), static_cast<uint32_t>(cut.size())));
    REQUIRE(read_guest_log(parsed(packet), line) == IcError::kNone);
    CHECK(line.size == kGuestLogMaxText - 1);

    CHECK_FALSE(build_guest_log(packet, kV3, GuestLogLevel::kInfo, 0, "", 0));
}

TEST_CASE("ic: guest log lines with no text, too much text or an unknown level are refused", "[ic][guest-log][hostile]") {
    Packet packet;
    REQUIRE(build_guest_log(packet, kV3, GuestLogLevel::kInfo, 0, "hello", 5));
    auto bytes = bytes_of(packet);
    Message message;
    GuestLogLine line;
    poke<uint16_t>(bytes, kMessageSizeAt, sizeof(GuestLogMessage));
    REQUIRE(parse(bytes, message) == IcError::kNone);
    CHECK(read_guest_log(message, line) == IcError::kBadString);
    bytes = bytes_of(packet);
    poke<uint32_t>(bytes, kBodyAt, 3);
    REQUIRE(parse(bytes, message) == IcError::kNone);
    CHECK(read_guest_log(message, line) == IcError::kBadBody);

    const std::vector<uint8_t> body(sizeof(GuestLogMessage) + kGuestLogMaxText + 1, 'z');
    Header header = request_header(MessageType::kGuestLog, kV3, 0);
    header.flags = kFlagRequest;
    REQUIRE(build_packet(packet, header, body.data(), static_cast<uint32_t>(body.size())));
    CHECK(read_guest_log(parsed(packet), line) == IcError::kBadString);
}
