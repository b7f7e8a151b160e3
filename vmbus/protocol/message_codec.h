// Channel messages to and from bytes. Parsing copies the message once out of wherever it arrived
// (the SynIC message page may be shared with the sender), checks the type is one the receiving side
// accepts and that the size fits the type, and returns the copy as a typed message. Semantics
// (is this relid offered? is this GPADL known?) are for the channel state machines.
//
// Size rule (Linux vmbus_on_msg_dpc, OpenVMM protocol.rs): a message may be longer than its
// fixed part, since newer versions append fields; the extra bytes are ignored. It may not be
// shorter. GPADL header and body messages are the exception: their size says how many range words
// they carry, so it must be the fixed part plus whole words.
#pragma once

#include <stdint.h>

#include "vmbus/protocol/channel_messages.h"

namespace hvkvm::vmbus::protocol {

enum class ParseError : uint8_t {
    kNone,
    kShorterThanHeader,   // under 8 bytes
    kLongerThanPayload,   // over 240 bytes
    kUnknownType,         // not a VMBus message type
    kUnsupportedType,     // a real type this implementation does not handle (e.g. MODIFYCHANNEL)
    kWrongDirection,      // a type only the other side sends
    kTruncated,           // shorter than the type's fixed part
    kPartialWord,         // GPADL message whose range data is not whole 8-byte words
    kNoRangeData,         // GPADL message carrying no words
    kBadRangeBufferLength,  // GPADL range_buflen not whole words, or less than one range needs
    kNoRanges,            // GPADL range_count 0
    kRangeDataOverflow,   // GPADL header carrying more words than range_buflen announces
};
const char* parse_error_name(ParseError error);
const char* message_type_name(MessageType type);

// The range words a GPADL header or body message carries, copied.
struct GpadlHeaderMessage {
    GpadlHeader fixed;
    uint32_t word_count;
    uint64_t words[kGpadlHeaderMaxWords];
};
struct GpadlBodyMessage {
    GpadlBody fixed;
    uint32_t word_count;
    uint64_t words[kGpadlBodyMaxWords];
};

// A message the guest sent, as the host parses it. `type` says which member holds it.
struct GuestMessage {
    MessageType type = MessageType::kInvalid;
    union {
        InitiateContact initiate_contact;
        RequestOffers request_offers;
        OpenChannel open_channel;
        CloseChannel close_channel;
        GpadlHeaderMessage gpadl_header;
        GpadlBodyMessage gpadl_body;
        GpadlTeardown gpadl_teardown;
        RelIdReleased relid_released;
        Unload unload;
    };
    GuestMessage() : request_offers() {}
};

// A message the host sent, as the guest parses it.
struct HostMessage {
    MessageType type = MessageType::kInvalid;
    union {
        OfferChannel offer_channel;
        RescindChannelOffer rescind_channel_offer;
        AllOffersDelivered all_offers_delivered;
        OpenResult open_result;
        GpadlCreated gpadl_created;
        GpadlTorndown gpadl_torndown;
        VersionResponse version_response;
        UnloadResponse unload_response;
    };
    HostMessage() : all_offers_delivered() {}
};

ParseError parse_guest_message(const void* bytes, uint32_t size, GuestMessage& message);
ParseError parse_host_message(const void* bytes, uint32_t size, HostMessage& message);

// An encoded message, ready to post.
struct MessageBuffer {
    alignas(8) uint8_t bytes[kMaxMessageSize];
    uint32_t size = 0;
};

// Encodes any fixed-size message; its header is filled in from the type.
template <typename Message>
MessageBuffer encode(Message message) {
    static_assert(sizeof(Message) <= kMaxMessageSize);
    message.header = MessageHeader{Message::kType, 0};
    MessageBuffer buffer;
    __builtin_memcpy(buffer.bytes, &message, sizeof(message));
    buffer.size = sizeof(message);
    return buffer;
}

// GPADL messages with their range words (word_count <= kGpadlHeaderMaxWords / kGpadlBodyMaxWords).
MessageBuffer encode_gpadl_header(GpadlHeader fixed, const uint64_t* words, uint32_t word_count);
MessageBuffer encode_gpadl_body(GpadlBody fixed, const uint64_t* words, uint32_t word_count);

}  // namespace hvkvm::vmbus::protocol
