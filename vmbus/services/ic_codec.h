// Integration-service messages (ic.h) to and from packet payloads, for host VSPs and guest VSCs
// alike. Parsing works on the receiver's private copy of a packet's payload (copied once out of
// the ring): it checks the framing (pipe header, IC header, sizes, flags) before anything reads
// the body, and every body reader checks its size first. Strings cross as UTF-16LE on the wire
// and as UTF-8 on both sides; conversion refuses what is not valid in either encoding.
// Freestanding (no allocation, no library).
#pragma once

#include <stdint.h>

#include "vmbus/services/ic.h"

namespace hvkvm::vmbus::services::ic {

enum class IcError : uint8_t {
    kNone,
    kTooShort,         // shorter than pipe header + IC header
    kTooLong,          // longer than kMaxPacketPayload
    kBadPipeHeader,    // not a data packet, or its size runs past the packet or below an IC header
    kBadMessageSize,   // message_size runs past the pipe's data
    kBadFlags,         // unknown flag bits, or not exactly one of request / response
    kBadBody,          // the body is shorter than its message needs, or malformed
    kTooManyVersions,  // a negotiation lists more than kMaxNegotiateVersions of a kind
    kNoCommonVersion,  // negotiation: nothing both sides support
    kNotOffered,       // a negotiation answer naming a version that was not offered
    kBadString,        // KVP / log text: not valid UTF-16 or UTF-8, empty key, or too long
    kBadValueType,     // KVP value type not string, dword or qword
    kUnsupported,      // a KVP operation or pool this implementation does not serve
};
const char* ic_error_name(IcError error);
const char* message_type_name(MessageType type);

// --- framing ---

// A parsed message. `body` points into the caller's copy of the packet.
struct Message {
    Header header{};
    const uint8_t* body = nullptr;
    uint32_t body_size = 0;  // header.message_size

    bool is_request() const { return (header.flags & kFlagRequest) != 0; }
    bool is_response() const { return (header.flags & kFlagResponse) != 0; }
    bool is_transaction() const { return (header.flags & kFlagTransaction) != 0; }
};

// `size` is the packet's payload size as the ring reports it (a multiple of 8: padding after the
// pipe's data is allowed and ignored).
IcError parse_message(const uint8_t* packet, uint32_t size, Message& message);

// An encoded packet payload, ready for RingWriter::write_inband.
struct Packet {
    alignas(8) uint8_t bytes[kMaxPacketPayload];
    uint32_t size = 0;
};

struct Versions {
    Version framework{};
    Version message{};
};

// Frames `body` (header.message_size is set from body_size). False if it does not fit.
bool build_packet(Packet& packet, const Header& header, const void* body, uint32_t body_size);
// A host request: negotiated versions, TRANSACTION | REQUEST.
Header request_header(MessageType type, Versions versions, uint8_t transaction_id);
// The answer to `request`: its header with TRANSACTION | RESPONSE and `status`.
bool build_response(Packet& packet, const Header& request, uint32_t status, const void* body, uint32_t body_size);

// Copies a fixed-size body: body_size must be at least sizeof(Body) (longer bodies are accepted,
// the rest ignored, as Linux does).
template <typename Body>
IcError read_body(const Message& message, Body& body) {
    if (message.body_size < sizeof(Body)) return IcError::kBadBody;
    __builtin_memcpy(&body, message.body, sizeof(Body));
    return IcError::kNone;
}

// --- version negotiation ---

struct VersionList {
    const Version* items = nullptr;
    uint32_t count = 0;
};
template <uint32_t N>
constexpr VersionList list_of(const Version (&versions)[N]) {
    return VersionList{versions, N};
}
inline constexpr VersionList kFrameworks = list_of(kFrameworkVersions);
inline VersionList message_versions(const Service& service) { return {service.versions, service.version_count}; }

// Host: the request offering `framework` and `message` versions (each 1..kMaxNegotiateVersions).
bool build_negotiate_request(Packet& packet, VersionList framework, VersionList message, uint8_t transaction_id = 0);
// Guest: the highest framework and the highest message version that the request offers and
// `framework_supported` / `message_supported` contain. kNoCommonVersion if either has none.
IcError choose_versions(const Message& request, VersionList framework_supported, VersionList message_supported,
                        Versions& chosen);
// Guest: the answer naming `chosen`, or, with nullptr, saying nothing is in common (counts 0).
bool build_negotiate_response(Packet& packet, const Header& request, const Versions* chosen);
// Host: the guest's answer must name exactly one framework and one message version, each one the
// host offered.
IcError read_negotiate_response(const Message& response, VersionList framework_offered,
                                VersionList message_offered, Versions& chosen);

// --- UTF-16 <-> UTF-8 ---

// UTF-8 needs at most 3 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units).
inline constexpr uint32_t kKvpMaxKeyUtf8 = 3 * kKvpMaxKeyUnits;      // 765
inline constexpr uint32_t kKvpMaxValueUtf8 = 3 * kKvpMaxValueUnits;  // 3069

// Encodes `size` bytes of UTF-8 as UTF-16LE followed by a NUL unit. Returns the bytes written
// (NUL included), or 0 if the text is not valid UTF-8, contains a NUL, or needs more than
// `capacity` bytes.
uint32_t utf8_to_utf16(const char* utf8, uint32_t size, uint8_t* out, uint32_t capacity);
// Decodes UTF-16LE from `bytes` bytes (even; stops at the first NUL unit) into UTF-8 with a
// terminating NUL. Returns the length without the NUL, or -1 if the input is not valid UTF-16
// (odd size, unpaired surrogate) or does not fit `capacity` (NUL included).
int32_t utf16_to_utf8(const uint8_t* utf16, uint32_t bytes, char* out, uint32_t capacity);

// --- KVP ---

template <uint32_t Capacity>
struct Text {
    char bytes[Capacity + 1] = {};  // NUL-terminated
    uint32_t size = 0;
    bool assign(const char* text, uint32_t length) {
        if (length > Capacity) return false;
        __builtin_memcpy(bytes, text, length);
        bytes[length] = '\0';
        size = length;
        return true;
    }
};
using KvpKeyText = Text<kKvpMaxKeyUtf8>;
using KvpValueText = Text<kKvpMaxValueUtf8>;

// A KVP request or answer with its strings in UTF-8. Which fields matter depends on the operation
// and direction: GET carries a key (and, answered, the value), SET a key and value, DELETE a key,
// ENUMERATE an index (and, answered, the key and value at it).
struct KvpRecord {
    KvpOperation operation = KvpOperation::kGet;
    KvpPool pool = KvpPool::kExternal;
    uint32_t index = 0;
    KvpKeyText key;
    KvpValueText value;
};

// The body size each supported operation needs (KvpHeader included); 0 for an unsupported one.
uint32_t kvp_message_size(KvpOperation operation);

// Host: a request (strings must fit the wire limits: key 1..255 UTF-16 units, value 0..1023).
bool build_kvp_request(Packet& packet, Versions versions, uint8_t transaction_id, const KvpRecord& request);
// Guest: decodes what the request's operation carries. kUnsupported for the IP-address
// operations and unknown ones or pools (the guest answers those kStatusNotSupported).
IcError read_kvp_request(const Message& request, KvpRecord& record);
// Guest: the answer. With kStatusSuccess, GET carries record.value and ENUMERATE record.key and
// record.value (as strings); other statuses carry nothing.
bool build_kvp_response(Packet& packet, const Message& request, uint32_t status, const KvpRecord& answer);
// Host: decodes the guest's answer to a request of `operation` (the header's status says whether
// it succeeded; only a successful GET or ENUMERATE carries strings). The operation and pool must
// be the request's.
IcError read_kvp_response(const Message& response, const KvpRecord& request, KvpRecord& answer);

// --- guest log ---

// Guest: one line (truncated to kGuestLogMaxText bytes, never inside a UTF-8 sequence).
bool build_guest_log(Packet& packet, Versions versions, GuestLogLevel level, uint32_t dropped, const char* text,
                     uint32_t size);
struct GuestLogLine {
    GuestLogLevel level = GuestLogLevel::kInfo;
    uint32_t dropped = 0;
    const char* text = nullptr;  // within the caller's packet copy; not NUL-terminated
    uint32_t size = 0;
};
// Host: 1..kGuestLogMaxText bytes of text, a known level.
IcError read_guest_log(const Message& message, GuestLogLine& line);

}  // namespace hvkvm::vmbus::services::ic
