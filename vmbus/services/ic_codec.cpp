#include "vmbus/services/ic_codec.h"

namespace hvkvm::vmbus::services::ic {
namespace {

constexpr uint32_t kPipeHeaderBytes = sizeof(PipeHeader);

bool contains(VersionList list, Version version) {
    for (uint32_t i = 0; i < list.count; ++i)
        if (list.items[i] == version) return true;
    return false;
}

// The highest version of `offered` (read from the message, unaligned) that `supported` contains.
bool highest_common(const uint8_t* offered, uint32_t count, VersionList supported, Version& best) {
    bool found = false;
    for (uint32_t i = 0; i < count; ++i) {
        Version version;
        __builtin_memcpy(&version, offered + i * sizeof(Version), sizeof version);
        if (contains(supported, version) && (!found || best < version)) {
            best = version;
            found = true;
        }
    }
    return found;
}

void store_u16(uint8_t* out, uint16_t unit) {
    out[0] = static_cast<uint8_t>(unit);
    out[1] = static_cast<uint8_t>(unit >> 8);
}

uint16_t load_u16(const uint8_t* in) { return static_cast<uint16_t>(in[0] | in[1] << 8); }

// One code point from UTF-8, strictly (no overlong forms, no surrogates, at most U+10FFFF).
// Returns the bytes it took, 0 if invalid.
uint32_t decode_utf8(const uint8_t* in, uint32_t available, uint32_t& code_point) {
    const uint8_t lead = in[0];
    uint32_t length;
    uint32_t minimum;
    if (lead < 0x80) {
        code_point = lead;
        return 1;
    } else if ((lead & 0xe0) == 0xc0) {
        length = 2, minimum = 0x80, code_point = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
        length = 3, minimum = 0x800, code_point = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
        length = 4, minimum = 0x10000, code_point = lead & 0x07;
    } else {
        return 0;
    }
    if (length > available) return 0;
    for (uint32_t i = 1; i < length; ++i) {
        if ((in[i] & 0xc0) != 0x80) return 0;
        code_point = code_point << 6 | (in[i] & 0x3f);
    }
    if (code_point < minimum || code_point > 0x10ffff || (code_point >= 0xd800 && code_point <= 0xdfff)) return 0;
    return length;
}

// Appends a code point as UTF-8; false if it does not fit `capacity`.
bool append_utf8(uint32_t code_point, char* out, uint32_t& length, uint32_t capacity) {
    uint8_t bytes[4];
    uint32_t count;
    if (code_point < 0x80) {
        bytes[0] = static_cast<uint8_t>(code_point), count = 1;
    } else if (code_point < 0x800) {
        bytes[0] = static_cast<uint8_t>(0xc0 | code_point >> 6), count = 2;
    } else if (code_point < 0x10000) {
        bytes[0] = static_cast<uint8_t>(0xe0 | code_point >> 12), count = 3;
    } else {
        bytes[0] = static_cast<uint8_t>(0xf0 | code_point >> 18), count = 4;
    }
    for (uint32_t i = 1; i < count; ++i)
        bytes[i] = static_cast<uint8_t>(0x80 | ((code_point >> (6 * (count - 1 - i))) & 0x3f));
    if (length + count > capacity) return false;
    __builtin_memcpy(out + length, bytes, count);
    length += count;
    return true;
}

// A UTF-16 field of a KVP message: `size` bytes claimed by the peer, within a field of `field`
// bytes. Decodes into `text`.
template <uint32_t Capacity>
bool read_utf16_field(const uint8_t* field, uint32_t field_bytes, uint32_t size, Text<Capacity>& text) {
    if (size > field_bytes) return false;
    const int32_t length = utf16_to_utf8(field, size, text.bytes, Capacity + 1);
    if (length < 0) return false;
    text.size = static_cast<uint32_t>(length);
    return true;
}

// A KVP value of any supported type, as text.
bool read_value(const KvpValue& value, KvpValueText& text) {
    switch (value.value_type) {
    case KvpValueType::kString:
    case KvpValueType::kExpandString: return read_utf16_field(value.value, kKvpMaxValueBytes, value.value_size, text);
    case KvpValueType::kDword:
    case KvpValueType::kQword: {
        const uint32_t bytes = value.value_type == KvpValueType::kDword ? 4 : 8;
        if (value.value_size != bytes) return false;
        uint64_t number = 0;
        __builtin_memcpy(&number, value.value, bytes);
        char digits[20];
        uint32_t count = 0;
        do digits[count++] = static_cast<char>('0' + number % 10);
        while ((number /= 10) != 0);
        text.size = count;
        for (uint32_t i = 0; i < count; ++i) text.bytes[i] = digits[count - 1 - i];
        text.bytes[count] = '\0';
        return true;
    }
    }
    return false;
}

bool is_known_value_type(KvpValueType type) {
    return type == KvpValueType::kString || type == KvpValueType::kExpandString || type == KvpValueType::kDword ||
           type == KvpValueType::kQword;
}

bool write_key(const KvpKeyText& key, uint8_t* field, uint32_t& size) {
    if (key.size == 0) return false;
    size = utf8_to_utf16(key.bytes, key.size, field, kKvpMaxKeyBytes);
    return size != 0;
}

bool write_string_value(const KvpValueText& text, KvpValue& value) {
    value.value_type = KvpValueType::kString;
    value.value_size = utf8_to_utf16(text.bytes, text.size, value.value, kKvpMaxValueBytes);
    return value.value_size != 0;
}

bool is_supported_pool(KvpPool pool) { return static_cast<uint8_t>(pool) < kKvpPoolCount; }

// The operation-specific body of a KVP message, after the KvpHeader.
struct KvpBody {
    KvpHeader header;
    union {
        KvpValue value;  // GET, SET
        KvpDelete del;
        KvpEnumerate enumerate;
    };
    KvpBody() : header{}, enumerate{} {}
};
static_assert(sizeof(KvpBody) == kKvpMaxMessage);

}  // namespace

const char* ic_error_name(IcError error) {
    switch (error) {
    case IcError::kNone: return "none";
    case IcError::kTooShort: return "shorter than the IC framing";
    case IcError::kTooLong: return "longer than any IC message";
    case IcError::kBadPipeHeader: return "bad pipe header";
    case IcError::kBadMessageSize: return "message size runs past the packet";
    case IcError::kBadFlags: return "bad flags";
    case IcError::kBadBody: return "malformed message body";
    case IcError::kTooManyVersions: return "too many versions";
    case IcError::kNoCommonVersion: return "no common version";
    case IcError::kNotOffered: return "a version that was not offered";
    case IcError::kBadString: return "bad string";
    case IcError::kBadValueType: return "bad value type";
    case IcError::kUnsupported: return "unsupported operation";
    }
    return "unknown";
}

const char* message_type_name(MessageType type) {
    switch (type) {
    case MessageType::kNegotiate: return "negotiate";
    case MessageType::kHeartbeat: return "heartbeat";
    case MessageType::kKvpExchange: return "kvp";
    case MessageType::kShutdown: return "shutdown";
    case MessageType::kTimeSync: return "timesync";
    case MessageType::kGuestLog: return "guest-log";
    }
    return "unknown";
}

IcError parse_message(const uint8_t* packet, uint32_t size, Message& message) {
    if (size < kFramingBytes) return IcError::kTooShort;
    if (size > kMaxPacketPayload) return IcError::kTooLong;
    PipeHeader pipe;
    __builtin_memcpy(&pipe, packet, sizeof pipe);
    if (pipe.type != kPipeData || pipe.size < sizeof(Header) || pipe.size > size - kPipeHeaderBytes)
        return IcError::kBadPipeHeader;
    __builtin_memcpy(&message.header, packet + kPipeHeaderBytes, sizeof(Header));
    if (message.header.message_size > pipe.size - sizeof(Header)) return IcError::kBadMessageSize;
    const uint8_t flags = message.header.flags;
    const bool request = flags & kFlagRequest, response = flags & kFlagResponse;
    if ((flags & ~kKnownFlags) != 0 || request == response) return IcError::kBadFlags;
    message.body = packet + kFramingBytes;
    message.body_size = message.header.message_size;
    return IcError::kNone;
}

bool build_packet(Packet& packet, const Header& header, const void* body, uint32_t body_size) {
    if (body_size > kMaxBody) return false;
    const PipeHeader pipe{kPipeData, static_cast<uint32_t>(sizeof(Header)) + body_size};
    Header framed = header;
    framed.message_size = static_cast<uint16_t>(body_size);
    __builtin_memcpy(packet.bytes, &pipe, sizeof pipe);
    __builtin_memcpy(packet.bytes + kPipeHeaderBytes, &framed, sizeof framed);
    if (body_size) __builtin_memcpy(packet.bytes + kFramingBytes, body, body_size);
    packet.size = kFramingBytes + body_size;
    return true;
}

Header request_header(MessageType type, Versions versions, uint8_t transaction_id) {
    Header header{};
    header.framework_version = versions.framework;
    header.type = type;
    header.message_version = versions.message;
    header.transaction_id = transaction_id;
    header.flags = kFlagTransaction | kFlagRequest;
    return header;
}

bool build_response(Packet& packet, const Header& request, uint32_t status, const void* body, uint32_t body_size) {
    Header header = request;
    header.status = status;
    header.flags = kFlagTransaction | kFlagResponse;
    return build_packet(packet, header, body, body_size);
}

bool build_negotiate_request(Packet& packet, VersionList framework, VersionList message, uint8_t transaction_id) {
    if (framework.count == 0 || framework.count > kMaxNegotiateVersions || message.count == 0 ||
        message.count > kMaxNegotiateVersions)
        return false;
    uint8_t body[kMaxNegotiateBody];
    const Negotiate counts{static_cast<uint16_t>(framework.count), static_cast<uint16_t>(message.count), 0};
    __builtin_memcpy(body, &counts, sizeof counts);
    uint32_t size = sizeof counts;
    __builtin_memcpy(body + size, framework.items, framework.count * sizeof(Version));
    size += framework.count * sizeof(Version);
    __builtin_memcpy(body + size, message.items, message.count * sizeof(Version));
    size += message.count * sizeof(Version);
    Header header{};
    header.type = MessageType::kNegotiate;
    header.transaction_id = transaction_id;
    header.flags = kFlagTransaction | kFlagRequest;
    return build_packet(packet, header, body, size);
}

IcError choose_versions(const Message& request, VersionList framework_supported, VersionList message_supported,
                        Versions& chosen) {
    Negotiate counts;
    if (read_body(request, counts) != IcError::kNone) return IcError::kBadBody;
    if (counts.framework_count > kMaxNegotiateVersions || counts.message_count > kMaxNegotiateVersions)
        return IcError::kTooManyVersions;
    const uint32_t listed = (uint32_t{counts.framework_count} + counts.message_count) * sizeof(Version);
    if (request.body_size - sizeof counts < listed) return IcError::kBadBody;
    const uint8_t* frameworks = request.body + sizeof counts;
    const uint8_t* messages = frameworks + counts.framework_count * sizeof(Version);
    if (!highest_common(frameworks, counts.framework_count, framework_supported, chosen.framework) ||
        !highest_common(messages, counts.message_count, message_supported, chosen.message))
        return IcError::kNoCommonVersion;
    return IcError::kNone;
}

bool build_negotiate_response(Packet& packet, const Header& request, const Versions* chosen) {
    uint8_t body[kNegotiateResponseBody] = {};
    const Negotiate counts{static_cast<uint16_t>(chosen ? 1 : 0), static_cast<uint16_t>(chosen ? 1 : 0), 0};
    __builtin_memcpy(body, &counts, sizeof counts);
    if (chosen) {
        __builtin_memcpy(body + sizeof counts, &chosen->framework, sizeof(Version));
        __builtin_memcpy(body + sizeof counts + sizeof(Version), &chosen->message, sizeof(Version));
    }
    return build_response(packet, request, kStatusSuccess, body, sizeof body);
}

IcError read_negotiate_response(const Message& response, VersionList framework_offered,
                                VersionList message_offered, Versions& chosen) {
    Negotiate counts;
    if (read_body(response, counts) != IcError::kNone) return IcError::kBadBody;
    if (counts.framework_count == 0 && counts.message_count == 0) return IcError::kNoCommonVersion;
    if (counts.framework_count != 1 || counts.message_count != 1) return IcError::kBadBody;
    if (response.body_size < kNegotiateResponseBody) return IcError::kBadBody;
    Versions answer;
    __builtin_memcpy(&answer.framework, response.body + sizeof counts, sizeof(Version));
    __builtin_memcpy(&answer.message, response.body + sizeof counts + sizeof(Version), sizeof(Version));
    if (!contains(framework_offered, answer.framework) || !contains(message_offered, answer.message))
        return IcError::kNotOffered;
    chosen = answer;
    return IcError::kNone;
}

uint32_t utf8_to_utf16(const char* utf8, uint32_t size, uint8_t* out, uint32_t capacity) {
    const auto* in = reinterpret_cast<const uint8_t*>(utf8);
    uint32_t written = 0;
    for (uint32_t at = 0; at < size;) {
        uint32_t code_point;
        const uint32_t taken = decode_utf8(in + at, size - at, code_point);
        if (taken == 0 || code_point == 0) return 0;
        at += taken;
        const uint32_t units = code_point >= 0x10000 ? 2 : 1;
        if (written + 2 * units + 2 > capacity) return 0;  // always leave room for the NUL
        if (units == 2) {
            const uint32_t offset = code_point - 0x10000;
            store_u16(out + written, static_cast<uint16_t>(0xd800 | offset >> 10));
            store_u16(out + written + 2, static_cast<uint16_t>(0xdc00 | (offset & 0x3ff)));
        } else {
            store_u16(out + written, static_cast<uint16_t>(code_point));
        }
        written += 2 * units;
    }
    if (written + 2 > capacity) return 0;
    store_u16(out + written, 0);
    return written + 2;
}

int32_t utf16_to_utf8(const uint8_t* utf16, uint32_t bytes, char* out, uint32_t capacity) {
    if (bytes % 2 != 0 || capacity == 0) return -1;
    uint32_t length = 0;
    const uint32_t units = bytes / 2;
    for (uint32_t i = 0; i < units; ++i) {
        const uint16_t unit = load_u16(utf16 + 2 * i);
        if (unit == 0) break;
        uint32_t code_point = unit;
        if (unit >= 0xdc00 && unit <= 0xdfff) return -1;  // a low surrogate first
        if (unit >= 0xd800 && unit <= 0xdbff) {
            if (i + 1 == units) return -1;
            const uint16_t low = load_u16(utf16 + 2 * (i + 1));
            if (low < 0xdc00 || low > 0xdfff) return -1;
            code_point = 0x10000 + ((uint32_t{unit} - 0xd800) << 10) + (low - 0xdc00u);
            ++i;
        }
        if (!append_utf8(code_point, out, length, capacity - 1)) return -1;
    }
    out[length] = '\0';
    return static_cast<int32_t>(length);
}

uint32_t kvp_message_size(KvpOperation operation) {
    switch (operation) {
    case KvpOperation::kGet:
    case KvpOperation::kSet: return kKvpGetSetMessage;
    case KvpOperation::kDelete: return kKvpDeleteMessage;
    case KvpOperation::kEnumerate: return kKvpEnumerateMessage;
    case KvpOperation::kGetIpInfo:
    case KvpOperation::kSetIpInfo: return 0;
    }
    return 0;
}

bool build_kvp_request(Packet& packet, Versions versions, uint8_t transaction_id, const KvpRecord& request) {
    const uint32_t size = kvp_message_size(request.operation);
    if (size == 0) return false;
    KvpBody body;
    body.header = {request.operation, request.pool, 0};
    switch (request.operation) {
    case KvpOperation::kGet:
        if (!write_key(request.key, body.value.key, body.value.key_size)) return false;
        body.value.value_type = KvpValueType::kString;
        break;
    case KvpOperation::kSet:
        if (!write_key(request.key, body.value.key, body.value.key_size) || !write_string_value(request.value, body.value))
            return false;
        break;
    case KvpOperation::kDelete:
        if (!write_key(request.key, body.del.key, body.del.key_size)) return false;
        break;
    case KvpOperation::kEnumerate: body.enumerate.index = request.index; break;
    default: return false;
    }
    return build_packet(packet, request_header(MessageType::kKvpExchange, versions, transaction_id), &body, size);
}

IcError read_kvp_request(const Message& request, KvpRecord& record) {
    KvpHeader header;
    if (read_body(request, header) != IcError::kNone) return IcError::kBadBody;
    record.operation = header.operation;  // set even when refused: the answer names them
    record.pool = header.pool;
    record.key.size = record.value.size = 0;
    const uint32_t size = kvp_message_size(header.operation);
    if (size == 0 || !is_supported_pool(header.pool)) return IcError::kUnsupported;
    if (request.body_size < size || request.body_size > kKvpMaxMessage) return IcError::kBadBody;
    KvpBody body;
    __builtin_memcpy(&body, request.body, size);
    switch (header.operation) {
    case KvpOperation::kGet:
        if (!read_utf16_field(body.value.key, kKvpMaxKeyBytes, body.value.key_size, record.key) || record.key.size == 0)
            return IcError::kBadString;
        return IcError::kNone;
    case KvpOperation::kSet:
        if (!read_utf16_field(body.value.key, kKvpMaxKeyBytes, body.value.key_size, record.key) || record.key.size == 0)
            return IcError::kBadString;
        if (!is_known_value_type(body.value.value_type)) return IcError::kBadValueType;
        return read_value(body.value, record.value) ? IcError::kNone : IcError::kBadString;
    case KvpOperation::kDelete:
        if (!read_utf16_field(body.del.key, kKvpMaxKeyBytes, body.del.key_size, record.key) || record.key.size == 0)
            return IcError::kBadString;
        return IcError::kNone;
    case KvpOperation::kEnumerate: record.index = body.enumerate.index; return IcError::kNone;
    default: return IcError::kUnsupported;
    }
}

bool build_kvp_response(Packet& packet, const Message& request, uint32_t status, const KvpRecord& answer) {
    uint32_t size = kvp_message_size(answer.operation);
    if (size == 0) size = sizeof(KvpHeader);  // an unsupported operation: answered with its header only
    KvpBody body;
    body.header = {answer.operation, answer.pool, 0};
    if (status == kStatusSuccess) {
        switch (answer.operation) {
        case KvpOperation::kGet:
            if (!write_key(answer.key, body.value.key, body.value.key_size) || !write_string_value(answer.value, body.value))
                return false;
            break;
        case KvpOperation::kEnumerate:
            body.enumerate.index = answer.index;
            if (!write_key(answer.key, body.enumerate.value.key, body.enumerate.value.key_size) ||
                !write_string_value(answer.value, body.enumerate.value))
                return false;
            break;
        default: break;
        }
    } else if (answer.operation == KvpOperation::kEnumerate) {
        body.enumerate.index = answer.index;
    }
    return build_response(packet, request.header, status, &body, size);
}

IcError read_kvp_response(const Message& response, const KvpRecord& request, KvpRecord& answer) {
    KvpHeader header;
    if (read_body(response, header) != IcError::kNone) return IcError::kBadBody;
    if (header.operation != request.operation || header.pool != request.pool) return IcError::kBadBody;
    const uint32_t size = kvp_message_size(header.operation);
    if (size == 0) return IcError::kUnsupported;
    if (response.body_size < size || response.body_size > kKvpMaxMessage) return IcError::kBadBody;
    answer.operation = header.operation;
    answer.pool = header.pool;
    answer.index = request.index;
    answer.key.size = answer.value.size = 0;
    answer.key.bytes[0] = answer.value.bytes[0] = '\0';
    if (response.header.status != kStatusSuccess) return IcError::kNone;
    KvpBody body;
    __builtin_memcpy(&body, response.body, size);
    switch (header.operation) {
    case KvpOperation::kGet:
        if (!is_known_value_type(body.value.value_type)) return IcError::kBadValueType;
        return read_value(body.value, answer.value) ? IcError::kNone : IcError::kBadString;
    case KvpOperation::kEnumerate:
        if (body.enumerate.index != request.index) return IcError::kBadBody;
        if (!read_utf16_field(body.enumerate.value.key, kKvpMaxKeyBytes, body.enumerate.value.key_size, answer.key) ||
            answer.key.size == 0)
            return IcError::kBadString;
        if (!is_known_value_type(body.enumerate.value.value_type)) return IcError::kBadValueType;
        return read_value(body.enumerate.value, answer.value) ? IcError::kNone : IcError::kBadString;
    default: return IcError::kNone;
    }
}

bool build_guest_log(Packet& packet, Versions versions, GuestLogLevel level, uint32_t dropped, const char* text,
                     uint32_t size) {
    if (size > kGuestLogMaxText) {
        size = kGuestLogMaxText;
        // Back up to the start of a UTF-8 sequence so that the cut leaves valid text.
        while (size > 0 && (static_cast<uint8_t>(text[size]) & 0xc0) == 0x80) --size;
    }
    if (size == 0) return false;
    uint8_t body[sizeof(GuestLogMessage) + kGuestLogMaxText];
    const GuestLogMessage fields{static_cast<uint32_t>(level), dropped};
    __builtin_memcpy(body, &fields, sizeof fields);
    __builtin_memcpy(body + sizeof fields, text, size);
    Header header = request_header(MessageType::kGuestLog, versions, 0);
    header.flags = kFlagRequest;  // nobody answers a log line
    return build_packet(packet, header, body, sizeof fields + size);
}

IcError read_guest_log(const Message& message, GuestLogLine& line) {
    GuestLogMessage fields;
    if (read_body(message, fields) != IcError::kNone) return IcError::kBadBody;
    const uint32_t size = message.body_size - sizeof fields;
    if (size == 0 || size > kGuestLogMaxText) return IcError::kBadString;
    if (fields.level > static_cast<uint32_t>(GuestLogLevel::kError)) return IcError::kBadBody;
    line.level = static_cast<GuestLogLevel>(fields.level);
    line.dropped = fields.dropped;
    line.text = reinterpret_cast<const char*>(message.body + sizeof fields);
    line.size = size;
    return IcError::kNone;
}

}  // namespace hvkvm::vmbus::services::ic
