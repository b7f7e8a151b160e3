// Integration-service messages (vmbus/services/ic_codec.h) from a hostile peer, through every reader
// both sides use: framing, negotiation (offer and answer), fixed bodies, KVP requests and answers,
// guest-log lines, and UTF-16 text. Beyond not crashing (ASan, UBSan), what a reader accepts must
// keep its promises: a chosen version is one both lists hold, decoded strings fit their limits
// and survive a round trip through the encoder.
//
// Input: KVP operation (u8), pool (u8), enumeration index (u32) of the request a KVP answer is
// read against, then the packet payload.
#include <cstring>

#include "fuzz_input.h"
#include "vmbus/services/ic_codec.h"

using namespace hvkvm::vmbus::services::ic;
using hvkvm::vmbus::fuzz::check;
using hvkvm::vmbus::fuzz::FuzzInput;

namespace {

bool listed(VersionList list, Version version) {
    for (uint32_t i = 0; i < list.count; ++i)
        if (list.items[i] == version) return true;
    return false;
}

void check_negotiation(const Message& message) {
    const Version guest_messages[] = {{1, 0}, {3, 0}, {5, 0}};
    Versions chosen;
    if (choose_versions(message, kFrameworks, list_of(guest_messages), chosen) == IcError::kNone) {
        check(listed(kFrameworks, chosen.framework) && listed(list_of(guest_messages), chosen.message));
        Packet answer;
        check(build_negotiate_response(answer, message.header, &chosen));
        Message parsed;
        check(parse_message(answer.bytes, answer.size, parsed) == IcError::kNone);
    }
    if (read_negotiate_response(message, kFrameworks, message_versions(kKvp), chosen) == IcError::kNone)
        check(listed(kFrameworks, chosen.framework) && listed(message_versions(kKvp), chosen.message));
}

void check_kvp_request(const Message& message) {
    KvpRecord record;
    if (read_kvp_request(message, record) != IcError::kNone) return;
    check(record.key.size <= kKvpMaxKeyUtf8 && record.value.size <= kKvpMaxValueUtf8);
    // What the guest decoded it can answer with, and the host reads back the same strings.
    Packet answer;
    check(build_kvp_response(answer, message, kStatusSuccess, record));
    Message parsed;
    check(parse_message(answer.bytes, answer.size, parsed) == IcError::kNone);
    KvpRecord back;
    if (record.operation == KvpOperation::kGet &&
        read_kvp_response(parsed, record, back) == IcError::kNone)
        check(back.value.size == record.value.size && std::memcmp(back.value.bytes, record.value.bytes, back.value.size) == 0);
}

void check_kvp_answer(const Message& message, uint8_t operation, uint8_t pool, uint32_t index) {
    KvpRecord request;
    request.operation = static_cast<KvpOperation>(operation % 4);
    request.pool = static_cast<KvpPool>(pool % kKvpPoolCount);
    request.index = index;
    KvpRecord answer;
    if (read_kvp_response(message, request, answer) == IcError::kNone)
        check(answer.key.size <= kKvpMaxKeyUtf8 && answer.value.size <= kKvpMaxValueUtf8 &&
              answer.key.bytes[answer.key.size] == '\0' && answer.value.bytes[answer.value.size] == '\0');
}

void check_guest_log(const Message& message, const uint8_t* packet, size_t size) {
    GuestLogLine line;
    if (read_guest_log(message, line) != IcError::kNone) return;
    const auto* text = reinterpret_cast<const uint8_t*>(line.text);
    check(line.size >= 1 && line.size <= kGuestLogMaxText && text >= packet && text + line.size <= packet + size);
}

// UTF-16 text as a peer sends it: what decodes re-encodes to the same units (up to the NUL).
void check_utf16(const uint8_t* bytes, size_t size) {
    char text[kKvpMaxValueUtf8 + 1];
    const auto even = static_cast<uint32_t>(size & ~size_t{1}) > kKvpMaxValueBytes ? kKvpMaxValueBytes
                                                                                    : static_cast<uint32_t>(size & ~size_t{1});
    const int32_t length = utf16_to_utf8(bytes, even, text, sizeof text);
    if (length < 0) return;
    uint8_t again[kKvpMaxValueBytes + 2];
    const uint32_t encoded = utf8_to_utf16(text, static_cast<uint32_t>(length), again, sizeof again);
    check(encoded >= 2 && encoded - 2 <= even && std::memcmp(again, bytes, encoded - 2) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzInput input(data, size);
    const uint8_t operation = input.take<uint8_t>(), pool = input.take<uint8_t>();
    const auto index = input.take<uint32_t>();
    size_t packet_size = 0;
    const uint8_t* packet = input.take_bytes(input.remaining(), packet_size);
    check_utf16(packet, packet_size);
    Message message;
    if (parse_message(packet, static_cast<uint32_t>(packet_size), message) != IcError::kNone) return 0;
    check(message.body + message.body_size <= packet + packet_size);
    check_negotiation(message);
    HeartbeatMessage beat;
    ShutdownMessage shutdown;
    TimeSyncMessage time;
    (void)read_body(message, beat), (void)read_body(message, shutdown), (void)read_body(message, time);
    check_kvp_request(message);
    check_kvp_answer(message, operation, pool, index);
    check_guest_log(message, packet, packet_size);
    return 0;
}
