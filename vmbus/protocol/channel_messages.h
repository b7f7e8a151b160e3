// VMBus channel-management messages: the wire format the guest's VMBus driver and the host's
// channel server exchange through SynIC messages (HvPostMessage one way, SINT 2 the other). Types,
// numbers and layouts follow Linux include/linux/hyperv.h (`enum vmbus_channel_message_type`,
// `struct vmbus_channel_*`) and OpenVMM vmbus_core/src/protocol.rs; every size and offset is
// pinned below. A message is at most 240 bytes (the SynIC payload), header included.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::vmbus::protocol {

inline constexpr uint32_t kMaxMessageSize = 240;

enum class MessageType : uint32_t {
    kInvalid = 0,
    kOfferChannel = 1,           // host -> guest
    kRescindChannelOffer = 2,    // host -> guest
    kRequestOffers = 3,          // guest -> host
    kAllOffersDelivered = 4,     // host -> guest
    kOpenChannel = 5,            // guest -> host
    kOpenChannelResult = 6,      // host -> guest
    kCloseChannel = 7,           // guest -> host
    kGpadlHeader = 8,            // guest -> host
    kGpadlBody = 9,              // guest -> host
    kGpadlCreated = 10,          // host -> guest
    kGpadlTeardown = 11,         // guest -> host
    kGpadlTorndown = 12,         // host -> guest
    kRelIdReleased = 13,         // guest -> host
    kInitiateContact = 14,       // guest -> host
    kVersionResponse = 15,       // host -> guest
    kUnload = 16,                // guest -> host
    kUnloadResponse = 17,        // host -> guest
    kModifyChannel = 22,         // guest -> host (Win10 RS3+): not implemented, refused
    kModifyChannelResponse = 24, // host -> guest: not implemented, refused
};

// Protocol versions: major << 16 | minor. The host accepts exactly these; the guest offers them
// newest first and falls back on refusal, as Linux does (drivers/hv/connection.c). 6.0 (Copper)
// changes InitiateContact/VersionResponse and is not offered.
constexpr uint32_t make_version(uint16_t major, uint16_t minor) { return uint32_t{major} << 16 | minor; }
inline constexpr uint32_t kVersionWin8 = make_version(2, 4);
inline constexpr uint32_t kVersionWin8_1 = make_version(3, 0);
inline constexpr uint32_t kVersionWin10 = make_version(4, 0);
inline constexpr uint32_t kVersionWin10_4_1 = make_version(4, 1);
inline constexpr uint32_t kVersionWin10_5_0 = make_version(5, 0);
inline constexpr uint32_t kVersionWin10_5_1 = make_version(5, 1);
inline constexpr uint32_t kVersionWin10_5_2 = make_version(5, 2);
inline constexpr uint32_t kVersionWin10_5_3 = make_version(5, 3);
inline constexpr uint32_t kSupportedVersions[] = {kVersionWin10_5_3, kVersionWin10_5_2, kVersionWin10_5_1,
                                                 kVersionWin10_5_0, kVersionWin10_4_1, kVersionWin10,
                                                 kVersionWin8_1, kVersionWin8};
constexpr bool is_supported_version(uint32_t version) {
    for (uint32_t supported : kSupportedVersions) {
        if (supported == version) return true;
    }
    return false;
}

// Message connection ids (the HvPostMessage target): INITIATE_CONTACT goes to 4 from 5.0 on and
// to 1 before; from 5.0 on, later messages go to VersionResponse::message_connection_id.
inline constexpr uint32_t kMessageConnectionId = 1;
inline constexpr uint32_t kMessageConnectionId4 = 4;
inline constexpr uint8_t kVmbusMessageSint = 2;

// NTSTATUS-style results in OpenResult and GpadlCreated (OpenVMM vmbus_core protocol.rs).
inline constexpr uint32_t kStatusSuccess = 0;
inline constexpr uint32_t kStatusUnsuccessful = 0x8000ffff;

// VersionResponse::connection_state.
inline constexpr uint8_t kConnectionSuccessful = 0;
inline constexpr uint8_t kConnectionFailedLowResources = 1;
inline constexpr uint8_t kConnectionFailedUnknownFailure = 2;

// OfferChannel::flags (Linux VMBUS_CHANNEL_*).
inline constexpr uint16_t kOfferEnumerateDeviceInterface = 0x1;
inline constexpr uint16_t kOfferNamedPipeMode = 0x10;
inline constexpr uint16_t kOfferTlnpiProvider = 0x2000;
inline constexpr uint8_t kMonitorAllocated = 0x1;     // OfferChannel::monitor_flags bit 0
inline constexpr uint16_t kDedicatedInterrupt = 0x1;  // OfferChannel::interrupt_flags bit 0
inline constexpr uint8_t kNoMonitorId = 0xff;
inline constexpr uint32_t kUserDefinedBytes = 120;

struct MessageHeader {
    MessageType type;
    uint32_t padding;
};
static_assert(sizeof(MessageHeader) == 8 && offsetof(MessageHeader, padding) == 4);

// Microsoft's GUID layout: three little-endian integers and eight bytes.
struct Guid {
    uint32_t data1;
    uint16_t data2;
    uint16_t data3;
    uint8_t data4[8];

    friend bool operator==(const Guid& a, const Guid& b) {
        return __builtin_memcmp(&a, &b, sizeof(Guid)) == 0;
    }
};
static_assert(sizeof(Guid) == 16 && alignof(Guid) == 4);

struct OfferChannel {
    static constexpr MessageType kType = MessageType::kOfferChannel;
    MessageHeader header;
    Guid interface_type;
    Guid interface_instance;
    uint32_t reserved[4];
    uint16_t flags;
    uint16_t mmio_megabytes;
    uint8_t user_defined[kUserDefinedBytes];
    uint16_t sub_channel_index;
    uint16_t mmio_megabytes_optional;
    uint32_t child_relid;
    uint8_t monitor_id;
    uint8_t monitor_flags;
    uint16_t interrupt_flags;
    uint32_t connection_id;  // HvSignalEvent target for guest -> host signals
};
static_assert(sizeof(OfferChannel) == 196);
static_assert(offsetof(OfferChannel, interface_type) == 8);
static_assert(offsetof(OfferChannel, interface_instance) == 24);
static_assert(offsetof(OfferChannel, reserved) == 40);
static_assert(offsetof(OfferChannel, flags) == 56);
static_assert(offsetof(OfferChannel, mmio_megabytes) == 58);
static_assert(offsetof(OfferChannel, user_defined) == 60);
static_assert(offsetof(OfferChannel, sub_channel_index) == 180);
static_assert(offsetof(OfferChannel, mmio_megabytes_optional) == 182);
static_assert(offsetof(OfferChannel, child_relid) == 184);
static_assert(offsetof(OfferChannel, monitor_id) == 188);
static_assert(offsetof(OfferChannel, monitor_flags) == 189);
static_assert(offsetof(OfferChannel, interrupt_flags) == 190);
static_assert(offsetof(OfferChannel, connection_id) == 192);

struct RescindChannelOffer {
    static constexpr MessageType kType = MessageType::kRescindChannelOffer;
    MessageHeader header;
    uint32_t child_relid;
};
static_assert(sizeof(RescindChannelOffer) == 12 && offsetof(RescindChannelOffer, child_relid) == 8);

struct RequestOffers {
    static constexpr MessageType kType = MessageType::kRequestOffers;
    MessageHeader header;
};
static_assert(sizeof(RequestOffers) == 8);

struct AllOffersDelivered {
    static constexpr MessageType kType = MessageType::kAllOffersDelivered;
    MessageHeader header;
};
static_assert(sizeof(AllOffersDelivered) == 8);

struct OpenChannel {
    static constexpr MessageType kType = MessageType::kOpenChannel;
    MessageHeader header;
    uint32_t child_relid;
    uint32_t open_id;
    uint32_t ring_buffer_gpadl;
    uint32_t target_vp;
    uint32_t downstream_ring_page_offset;  // host -> guest ring starts this many pages into the GPADL
    uint8_t user_data[kUserDefinedBytes];
};
static_assert(sizeof(OpenChannel) == 148);
static_assert(offsetof(OpenChannel, child_relid) == 8);
static_assert(offsetof(OpenChannel, open_id) == 12);
static_assert(offsetof(OpenChannel, ring_buffer_gpadl) == 16);
static_assert(offsetof(OpenChannel, target_vp) == 20);
static_assert(offsetof(OpenChannel, downstream_ring_page_offset) == 24);
static_assert(offsetof(OpenChannel, user_data) == 28);

struct OpenResult {
    static constexpr MessageType kType = MessageType::kOpenChannelResult;
    MessageHeader header;
    uint32_t child_relid;
    uint32_t open_id;
    uint32_t status;
};
static_assert(sizeof(OpenResult) == 20);
static_assert(offsetof(OpenResult, open_id) == 12 && offsetof(OpenResult, status) == 16);

struct CloseChannel {
    static constexpr MessageType kType = MessageType::kCloseChannel;
    MessageHeader header;
    uint32_t child_relid;
};
static_assert(sizeof(CloseChannel) == 12 && offsetof(CloseChannel, child_relid) == 8);

// Followed, from offset 20, by range words (vmbus/gpa): the first of range_buflen / 8 words in
// total; GpadlBody messages carry the rest. range_buflen counts all of them, in bytes.
struct GpadlHeader {
    static constexpr MessageType kType = MessageType::kGpadlHeader;
    MessageHeader header;
    uint32_t child_relid;
    uint32_t gpadl;
    uint16_t range_buflen;
    uint16_t range_count;
};
static_assert(sizeof(GpadlHeader) == 20);
static_assert(offsetof(GpadlHeader, child_relid) == 8);
static_assert(offsetof(GpadlHeader, gpadl) == 12);
static_assert(offsetof(GpadlHeader, range_buflen) == 16);
static_assert(offsetof(GpadlHeader, range_count) == 18);

// Followed, from offset 16, by more range words of the GPADL begun by a GpadlHeader.
struct GpadlBody {
    static constexpr MessageType kType = MessageType::kGpadlBody;
    MessageHeader header;
    uint32_t message_number;  // reserved: Linux sends 0 (kzalloc), OpenVMM ignores it
    uint32_t gpadl;
};
static_assert(sizeof(GpadlBody) == 16 && offsetof(GpadlBody, gpadl) == 12);

// Words that fit after each fixed part: 27 in a header (a range header and 26 PFNs), 28 in a body.
inline constexpr uint32_t kGpadlHeaderMaxWords = (kMaxMessageSize - sizeof(GpadlHeader)) / 8;
inline constexpr uint32_t kGpadlBodyMaxWords = (kMaxMessageSize - sizeof(GpadlBody)) / 8;
static_assert(kGpadlHeaderMaxWords == 27 && kGpadlBodyMaxWords == 28);
// range_buflen is 16 bits: no GPADL has more range words than this.
inline constexpr uint32_t kGpadlMaxWords = 0xffff / 8;

struct GpadlCreated {
    static constexpr MessageType kType = MessageType::kGpadlCreated;
    MessageHeader header;
    uint32_t child_relid;
    uint32_t gpadl;
    uint32_t creation_status;
};
static_assert(sizeof(GpadlCreated) == 20 && offsetof(GpadlCreated, creation_status) == 16);

struct GpadlTeardown {
    static constexpr MessageType kType = MessageType::kGpadlTeardown;
    MessageHeader header;
    uint32_t child_relid;
    uint32_t gpadl;
};
static_assert(sizeof(GpadlTeardown) == 16 && offsetof(GpadlTeardown, gpadl) == 12);

struct GpadlTorndown {
    static constexpr MessageType kType = MessageType::kGpadlTorndown;
    MessageHeader header;
    uint32_t gpadl;
};
static_assert(sizeof(GpadlTorndown) == 12 && offsetof(GpadlTorndown, gpadl) == 8);

struct RelIdReleased {
    static constexpr MessageType kType = MessageType::kRelIdReleased;
    MessageHeader header;
    uint32_t child_relid;
};
static_assert(sizeof(RelIdReleased) == 12 && offsetof(RelIdReleased, child_relid) == 8);

struct InitiateContact {
    static constexpr MessageType kType = MessageType::kInitiateContact;
    MessageHeader header;
    uint32_t version_requested;
    uint32_t target_vcpu;        // the VP the host sends channel messages to (Win8.1+)
    uint64_t interrupt_page;     // before 5.0: interrupt page GPA; from 5.0: byte 0 is the message SINT
    uint64_t monitor_page1;      // parent -> child monitor page GPA, or 0
    uint64_t monitor_page2;      // child -> parent monitor page GPA, or 0
};
static_assert(sizeof(InitiateContact) == 40);
static_assert(offsetof(InitiateContact, version_requested) == 8);
static_assert(offsetof(InitiateContact, target_vcpu) == 12);
static_assert(offsetof(InitiateContact, interrupt_page) == 16);
static_assert(offsetof(InitiateContact, monitor_page1) == 24);
static_assert(offsetof(InitiateContact, monitor_page2) == 32);

struct VersionResponse {
    static constexpr MessageType kType = MessageType::kVersionResponse;
    MessageHeader header;
    uint8_t version_supported;  // 1: the requested version is accepted
    uint8_t connection_state;   // kConnection*
    uint16_t padding;
    uint32_t message_connection_id;  // from 5.0: where later guest messages go; before: the version
};
static_assert(sizeof(VersionResponse) == 16);
static_assert(offsetof(VersionResponse, version_supported) == 8);
static_assert(offsetof(VersionResponse, connection_state) == 9);
static_assert(offsetof(VersionResponse, message_connection_id) == 12);

struct Unload {
    static constexpr MessageType kType = MessageType::kUnload;
    MessageHeader header;
};
static_assert(sizeof(Unload) == 8);

struct UnloadResponse {
    static constexpr MessageType kType = MessageType::kUnloadResponse;
    MessageHeader header;
};
static_assert(sizeof(UnloadResponse) == 8);

}  // namespace hvkvm::vmbus::protocol
