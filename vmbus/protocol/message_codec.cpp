#include "vmbus/protocol/message_codec.h"

namespace hvkvm::vmbus::protocol {
namespace {

// The highest message number Hyper-V defines (OpenVMM protocol.rs: 29 RESUME). Numbers up to it that
// this implementation does not handle are "unsupported", anything else "unknown".
constexpr uint32_t kHighestKnownType = 29;

bool is_sent_by_guest(MessageType type) {
    switch (type) {
        case MessageType::kRequestOffers:
        case MessageType::kOpenChannel:
        case MessageType::kCloseChannel:
        case MessageType::kGpadlHeader:
        case MessageType::kGpadlBody:
        case MessageType::kGpadlTeardown:
        case MessageType::kRelIdReleased:
        case MessageType::kInitiateContact:
        case MessageType::kUnload: return true;
        default: return false;
    }
}

bool is_sent_by_host(MessageType type) {
    switch (type) {
        case MessageType::kOfferChannel:
        case MessageType::kRescindChannelOffer:
        case MessageType::kAllOffersDelivered:
        case MessageType::kOpenChannelResult:
        case MessageType::kGpadlCreated:
        case MessageType::kGpadlTorndown:
        case MessageType::kVersionResponse:
        case MessageType::kUnloadResponse: return true;
        default: return false;
    }
}

// The message, copied once into private memory, and its type.
struct Received {
    alignas(8) uint8_t bytes[kMaxMessageSize];
    uint32_t size;
    MessageType type;
};

ParseError receive(const void* bytes, uint32_t size, Received& received) {
    if (size < sizeof(MessageHeader)) return ParseError::kShorterThanHeader;
    if (size > kMaxMessageSize) return ParseError::kLongerThanPayload;
    __builtin_memcpy(received.bytes, bytes, size);
    received.size = size;
    MessageHeader header;
    __builtin_memcpy(&header, received.bytes, sizeof(header));
    received.type = header.type;
    const auto number = static_cast<uint32_t>(header.type);
    if (number == 0 || number > kHighestKnownType) return ParseError::kUnknownType;
    return ParseError::kNone;
}

template <typename Message>
ParseError copy_fixed(const Received& received, Message& message) {
    if (received.size < sizeof(Message)) return ParseError::kTruncated;
    __builtin_memcpy(&message, received.bytes, sizeof(Message));
    return ParseError::kNone;
}

// The words after a GPADL message's fixed part: whole words, at least one.
template <typename Fixed>
ParseError count_words(const Received& received, uint32_t& word_count) {
    if (received.size < sizeof(Fixed)) return ParseError::kTruncated;
    const uint32_t data_bytes = received.size - sizeof(Fixed);
    if (data_bytes % sizeof(uint64_t) != 0) return ParseError::kPartialWord;
    word_count = data_bytes / sizeof(uint64_t);
    return word_count == 0 ? ParseError::kNoRangeData : ParseError::kNone;
}

ParseError parse_gpadl_header(const Received& received, GpadlHeaderMessage& message) {
    uint32_t word_count = 0;
    const ParseError error = count_words<GpadlHeader>(received, word_count);
    if (error != ParseError::kNone) return error;
    __builtin_memcpy(&message.fixed, received.bytes, sizeof(GpadlHeader));
    if (message.fixed.range_count == 0) return ParseError::kNoRanges;
    // A range is at least a header word and one PFN.
    if (message.fixed.range_buflen % sizeof(uint64_t) != 0 || message.fixed.range_buflen < 2 * sizeof(uint64_t)) {
        return ParseError::kBadRangeBufferLength;
    }
    if (word_count > message.fixed.range_buflen / sizeof(uint64_t)) return ParseError::kRangeDataOverflow;
    message.word_count = word_count;
    __builtin_memcpy(message.words, received.bytes + sizeof(GpadlHeader), word_count * sizeof(uint64_t));
    return ParseError::kNone;
}

ParseError parse_gpadl_body(const Received& received, GpadlBodyMessage& message) {
    uint32_t word_count = 0;
    const ParseError error = count_words<GpadlBody>(received, word_count);
    if (error != ParseError::kNone) return error;
    __builtin_memcpy(&message.fixed, received.bytes, sizeof(GpadlBody));
    message.word_count = word_count;
    __builtin_memcpy(message.words, received.bytes + sizeof(GpadlBody), word_count * sizeof(uint64_t));
    return ParseError::kNone;
}

}  // namespace

const char* parse_error_name(ParseError error) {
    switch (error) {
        case ParseError::kNone: return "none";
        case ParseError::kShorterThanHeader: return "shorter than the message header";
        case ParseError::kLongerThanPayload: return "longer than a SynIC payload";
        case ParseError::kUnknownType: return "unknown message type";
        case ParseError::kUnsupportedType: return "unsupported message type";
        case ParseError::kWrongDirection: return "message type sent by the other side only";
        case ParseError::kTruncated: return "shorter than the message type";
        case ParseError::kPartialWord: return "GPADL data not whole words";
        case ParseError::kNoRangeData: return "GPADL message without range data";
        case ParseError::kBadRangeBufferLength: return "bad GPADL range_buflen";
        case ParseError::kNoRanges: return "GPADL with no ranges";
        case ParseError::kRangeDataOverflow: return "GPADL header data beyond range_buflen";
    }
    return "unknown";
}

const char* message_type_name(MessageType type) {
    switch (type) {
        case MessageType::kInvalid: return "INVALID";
        case MessageType::kOfferChannel: return "OFFERCHANNEL";
        case MessageType::kRescindChannelOffer: return "RESCIND_CHANNELOFFER";
        case MessageType::kRequestOffers: return "REQUESTOFFERS";
        case MessageType::kAllOffersDelivered: return "ALLOFFERS_DELIVERED";
        case MessageType::kOpenChannel: return "OPENCHANNEL";
        case MessageType::kOpenChannelResult: return "OPENCHANNEL_RESULT";
        case MessageType::kCloseChannel: return "CLOSECHANNEL";
        case MessageType::kGpadlHeader: return "GPADL_HEADER";
        case MessageType::kGpadlBody: return "GPADL_BODY";
        case MessageType::kGpadlCreated: return "GPADL_CREATED";
        case MessageType::kGpadlTeardown: return "GPADL_TEARDOWN";
        case MessageType::kGpadlTorndown: return "GPADL_TORNDOWN";
        case MessageType::kRelIdReleased: return "RELID_RELEASED";
        case MessageType::kInitiateContact: return "INITIATE_CONTACT";
        case MessageType::kVersionResponse: return "VERSION_RESPONSE";
        case MessageType::kUnload: return "UNLOAD";
        case MessageType::kUnloadResponse: return "UNLOAD_RESPONSE";
        case MessageType::kModifyChannel: return "MODIFYCHANNEL";
        case MessageType::kModifyChannelResponse: return "MODIFYCHANNEL_RESPONSE";
    }
    return "unknown";
}

ParseError parse_guest_message(const void* bytes, uint32_t size, GuestMessage& message) {
    Received received;
    ParseError error = receive(bytes, size, received);
    if (error != ParseError::kNone) return error;
    if (!is_sent_by_guest(received.type)) {
        return is_sent_by_host(received.type) ? ParseError::kWrongDirection : ParseError::kUnsupportedType;
    }
    switch (received.type) {
        case MessageType::kInitiateContact: error = copy_fixed(received, message.initiate_contact); break;
        case MessageType::kRequestOffers: error = copy_fixed(received, message.request_offers); break;
        case MessageType::kOpenChannel: error = copy_fixed(received, message.open_channel); break;
        case MessageType::kCloseChannel: error = copy_fixed(received, message.close_channel); break;
        case MessageType::kGpadlHeader: error = parse_gpadl_header(received, message.gpadl_header); break;
        case MessageType::kGpadlBody: error = parse_gpadl_body(received, message.gpadl_body); break;
        case MessageType::kGpadlTeardown: error = copy_fixed(received, message.gpadl_teardown); break;
        case MessageType::kRelIdReleased: error = copy_fixed(received, message.relid_released); break;
        case MessageType::kUnload: error = copy_fixed(received, message.unload); break;
        default: return ParseError::kUnsupportedType;
    }
    if (error == ParseError::kNone) message.type = received.type;
    return error;
}

ParseError parse_host_message(const void* bytes, uint32_t size, HostMessage& message) {
    Received received;
    ParseError error = receive(bytes, size, received);
    if (error != ParseError::kNone) return error;
    if (!is_sent_by_host(received.type)) {
        return is_sent_by_guest(received.type) ? ParseError::kWrongDirection : ParseError::kUnsupportedType;
    }
    switch (received.type) {
        case MessageType::kOfferChannel: error = copy_fixed(received, message.offer_channel); break;
        case MessageType::kRescindChannelOffer: error = copy_fixed(received, message.rescind_channel_offer); break;
        case MessageType::kAllOffersDelivered: error = copy_fixed(received, message.all_offers_delivered); break;
        case MessageType::kOpenChannelResult: error = copy_fixed(received, message.open_result); break;
        case MessageType::kGpadlCreated: error = copy_fixed(received, message.gpadl_created); break;
        case MessageType::kGpadlTorndown: error = copy_fixed(received, message.gpadl_torndown); break;
        case MessageType::kVersionResponse: error = copy_fixed(received, message.version_response); break;
        case MessageType::kUnloadResponse: error = copy_fixed(received, message.unload_response); break;
        default: return ParseError::kUnsupportedType;
    }
    if (error == ParseError::kNone) message.type = received.type;
    return error;
}

namespace {

// A GPADL message: the fixed part, then `word_count` range words (at most `kMaxWords`).
template <typename Fixed, uint32_t kMaxWords>
MessageBuffer encode_with_words(Fixed fixed, const uint64_t* words, uint32_t word_count) {
    fixed.header = MessageHeader{Fixed::kType, 0};
    MessageBuffer buffer;
    if (word_count > kMaxWords) return buffer;  // size 0: nothing to send
    __builtin_memcpy(buffer.bytes, &fixed, sizeof(fixed));
    __builtin_memcpy(buffer.bytes + sizeof(fixed), words, word_count * sizeof(uint64_t));
    buffer.size = sizeof(fixed) + word_count * sizeof(uint64_t);
    return buffer;
}

}  // namespace

MessageBuffer encode_gpadl_header(GpadlHeader fixed, const uint64_t* words, uint32_t word_count) {
    return encode_with_words<GpadlHeader, kGpadlHeaderMaxWords>(fixed, words, word_count);
}

MessageBuffer encode_gpadl_body(GpadlBody fixed, const uint64_t* words, uint32_t word_count) {
    return encode_with_words<GpadlBody, kGpadlBodyMaxWords>(fixed, words, word_count);
}

}  // namespace hvkvm::vmbus::protocol
