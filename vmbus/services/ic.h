// Hyper-V integration services (ICs): the wire format shared by the host's VSPs
// (root-partition/services/) and the guest's VSCs. Facts from Linux include/linux/hyperv.h and
// include/uapi/linux/hyperv.h (struct vmbuspipe_hdr, icmsg_hdr, icmsg_negotiate,
// heartbeat/shutdown/ictimesync_ref_data, hv_kvp_*) and OpenVMM vm/devices/hyperv_ic_protocol;
// every size and offset is pinned below. Compiled by host and guest.
//
// One IC message is one in-band VMBus packet (no completion requested) whose payload is
//   PipeHeader (8) | Header (20) | message body (Header::message_size bytes)
// The host sends requests (flags TRANSACTION | REQUEST); the guest answers each with a packet
// carrying the same VMBus transaction id and the request's header, flags TRANSACTION | RESPONSE
// and a status. The first exchange on a channel is the version negotiation (type kNegotiate).
//
// The guest-log channel is hvkvm's own (not Hyper-V): the same framing, negotiated the same way,
// but after negotiation the guest sends kGuestLog messages (flags REQUEST only: nobody answers).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmbus/protocol/channel_messages.h"

namespace hvkvm::vmbus::services::ic {

// --- framing -------------------------------------------------------------------------------------

// OpenVMM vmbus_ring PipeHeader (Linux struct vmbuspipe_hdr): the named-pipe framing of a
// message-mode pipe channel. `size` counts the bytes after this header.
struct PipeHeader {
    uint32_t type;
    uint32_t size;
};
static_assert(sizeof(PipeHeader) == 8 && offsetof(PipeHeader, size) == 4);
inline constexpr uint32_t kPipeData = 1;  // PIPE_PACKET_TYPE_DATA: the only type ICs use

struct Version {
    uint16_t major;
    uint16_t minor;

    friend constexpr bool operator==(Version a, Version b) { return a.major == b.major && a.minor == b.minor; }
    friend constexpr bool operator<(Version a, Version b) {
        return a.major != b.major ? a.major < b.major : a.minor < b.minor;
    }
};
static_assert(sizeof(Version) == 4 && offsetof(Version, minor) == 2);

enum class MessageType : uint16_t {
    kNegotiate = 0,
    kHeartbeat = 1,
    kKvpExchange = 2,
    kShutdown = 3,
    kTimeSync = 4,
    kGuestLog = 0x4000,  // hvkvm's own (Hyper-V uses 0..8)
};

inline constexpr uint8_t kFlagTransaction = 0x1;  // a response is expected / this is one
inline constexpr uint8_t kFlagRequest = 0x2;
inline constexpr uint8_t kFlagResponse = 0x4;
inline constexpr uint8_t kKnownFlags = kFlagTransaction | kFlagRequest | kFlagResponse;

// Linux struct icmsg_hdr, OpenVMM hyperv_ic_protocol::Header.
struct Header {
    Version framework_version;
    MessageType type;
    Version message_version;
    uint16_t message_size;  // bytes of body after this header
    uint32_t status;        // in responses
    uint8_t transaction_id;
    uint8_t flags;
    uint8_t reserved[2];
};
static_assert(sizeof(Header) == 20 && alignof(Header) == 4);
static_assert(offsetof(Header, type) == 4 && offsetof(Header, message_version) == 6 &&
              offsetof(Header, message_size) == 10 && offsetof(Header, status) == 12 &&
              offsetof(Header, transaction_id) == 16 && offsetof(Header, flags) == 17 &&
              offsetof(Header, reserved) == 18);

inline constexpr uint32_t kFramingBytes = sizeof(PipeHeader) + sizeof(Header);

// Header::status (HRESULTs; Linux HV_S_*, OpenVMM hyperv_ic_protocol::Status).
inline constexpr uint32_t kStatusSuccess = 0;
inline constexpr uint32_t kStatusNoMoreItems = 0x80070103;  // HV_S_CONT: end of an enumeration, or no such key
inline constexpr uint32_t kStatusFail = 0x80004005;         // HV_E_FAIL
inline constexpr uint32_t kStatusNotSupported = 0x80070032;
inline constexpr uint32_t kStatusNotFound = 0x80041002;

// --- version negotiation ---------------------------------------------------------------------------

// Linux struct icmsg_negotiate: the counts, then framework_count framework versions, then
// message_count message versions. The host's request lists what it offers; the guest's response
// has counts 1 and 1 and the pair it chose (or 0 and 0: nothing in common).
struct Negotiate {
    uint16_t framework_count;
    uint16_t message_count;
    uint32_t reserved;
};
static_assert(sizeof(Negotiate) == 8 && offsetof(Negotiate, message_count) == 2 && offsetof(Negotiate, reserved) == 4);

inline constexpr Version kFramework1{1, 0};
inline constexpr Version kFramework3{3, 0};
inline constexpr Version kFrameworkVersions[] = {kFramework1, kFramework3};
// The most versions of each kind a negotiation may list (each side offers two to four).
inline constexpr uint32_t kMaxNegotiateVersions = 16;
inline constexpr uint32_t kMaxNegotiateBody = sizeof(Negotiate) + 2 * kMaxNegotiateVersions * sizeof(Version);
inline constexpr uint32_t kNegotiateResponseBody = sizeof(Negotiate) + 2 * sizeof(Version);

// --- heartbeat ----------------------------------------------------------------------------------

// OpenVMM heartbeat::HeartbeatMessage. The host sends a sequence number; the guest answers with
// it plus one and its application state. (Linux declares 32 reserved bytes after the sequence but
// echoes whatever size it received.)
struct HeartbeatMessage {
    uint64_t sequence;
    uint32_t application_state;
    uint32_t reserved;
};
static_assert(sizeof(HeartbeatMessage) == 16 && offsetof(HeartbeatMessage, application_state) == 8 &&
              offsetof(HeartbeatMessage, reserved) == 12);
enum class ApplicationState : uint32_t { kUnknown = 0, kHealthy = 1, kCritical = 2, kStopped = 3 };
inline constexpr Version kHeartbeatVersions[] = {{1, 0}, {3, 0}};

// --- shutdown -------------------------------------------------------------------------------------

// Linux struct shutdown_msg_data, OpenVMM shutdown::ShutdownMessage.
inline constexpr uint32_t kShutdownMessageBytes = 2048;
struct ShutdownMessage {
    uint32_t reason_code;
    uint32_t timeout_seconds;
    uint32_t flags;
    char message[kShutdownMessageBytes];  // NUL-terminated text for the guest's user
};
static_assert(sizeof(ShutdownMessage) == 2060 && offsetof(ShutdownMessage, timeout_seconds) == 4 &&
              offsetof(ShutdownMessage, flags) == 8 && offsetof(ShutdownMessage, message) == 12);
inline constexpr uint32_t kShutdownFlagForce = 0x1;
inline constexpr uint32_t kShutdownFlagRestart = 0x2;    // from version 3.1
inline constexpr uint32_t kShutdownFlagHibernate = 0x4;  // from version 3.2
inline constexpr uint32_t kShutdownReasonPlanned = 0x80000000;  // SHTDN_REASON_FLAG_PLANNED
inline constexpr Version kShutdownVersions[] = {{1, 0}, {3, 0}, {3, 1}, {3, 2}};

// --- time sync -----------------------------------------------------------------------------------

// OpenVMM timesync::TimesyncMessageV4 (Linux struct ictimesync_ref_data, which packs it to 22
// bytes; the fields that matter sit at the same offsets). parent_time: the host's UTC wall clock
// in 100 ns units since 1601-01-01; reference_time: the partition's reference counter
// (HV_X64_MSR_TIME_REF_COUNT, 100 ns units) when parent_time was read.
struct TimeSyncMessage {
    uint64_t parent_time;
    uint64_t reference_time;
    uint8_t flags;
    uint8_t leap_indicator;
    uint8_t stratum;
    uint8_t reserved[5];
};
static_assert(sizeof(TimeSyncMessage) == 24 && offsetof(TimeSyncMessage, reference_time) == 8 &&
              offsetof(TimeSyncMessage, flags) == 16 && offsetof(TimeSyncMessage, leap_indicator) == 17 &&
              offsetof(TimeSyncMessage, stratum) == 18);
inline constexpr uint8_t kTimeSyncFlagSync = 0x1;    // set the clock (channel open, host clock stepped)
inline constexpr uint8_t kTimeSyncFlagSample = 0x2;  // a periodic sample: correct the clock
// 100 ns units from 1601-01-01 to 1970-01-01 (Linux WLTIMEDELTA).
inline constexpr uint64_t kUnixEpochIn1601Units = 116444736000000000ull;
inline constexpr Version kTimeSyncVersions[] = {{4, 0}};  // the host sends only version-4 messages

// --- KVP (data exchange) --------------------------------------------------------------------------

enum class KvpOperation : uint8_t { kGet = 0, kSet = 1, kDelete = 2, kEnumerate = 3, kGetIpInfo = 4, kSetIpInfo = 5 };
// Which store a pair lives in. External: pairs the host gives the guest. Guest: pairs the guest
// publishes. Auto: what the guest reports about itself (OS name, version...). (Linux
// enum hv_kvp_exchg_pool; pool 4, "auto internal", is never exchanged.)
enum class KvpPool : uint8_t { kExternal = 0, kGuest = 1, kAuto = 2, kAutoExternal = 3 };
inline constexpr uint8_t kKvpPoolCount = 4;
enum class KvpValueType : uint32_t { kString = 1, kExpandString = 2, kDword = 4, kQword = 11 };

inline constexpr uint32_t kKvpMaxKeyBytes = 512;     // UTF-16, terminating NUL included
inline constexpr uint32_t kKvpMaxValueBytes = 2048;  // UTF-16, terminating NUL included
inline constexpr uint32_t kKvpMaxKeyUnits = kKvpMaxKeyBytes / 2 - 1;      // 255 characters
inline constexpr uint32_t kKvpMaxValueUnits = kKvpMaxValueBytes / 2 - 1;  // 1023 characters

struct KvpHeader {
    KvpOperation operation;
    KvpPool pool;
    uint16_t padding;
};
static_assert(sizeof(KvpHeader) == 4 && offsetof(KvpHeader, pool) == 1);

// Linux struct hv_kvp_exchg_msg_value. Sizes count bytes; strings are UTF-16LE.
struct KvpValue {
    KvpValueType value_type;
    uint32_t key_size;
    uint32_t value_size;
    uint8_t key[kKvpMaxKeyBytes];
    uint8_t value[kKvpMaxValueBytes];
};
static_assert(sizeof(KvpValue) == 2572 && offsetof(KvpValue, key_size) == 4 && offsetof(KvpValue, value_size) == 8 &&
              offsetof(KvpValue, key) == 12 && offsetof(KvpValue, value) == 524);

// The body of each operation follows the KvpHeader (GET and SET: a KvpValue).
struct KvpDelete {
    uint32_t key_size;
    uint8_t key[kKvpMaxKeyBytes];
};
static_assert(sizeof(KvpDelete) == 516 && offsetof(KvpDelete, key) == 4);

struct KvpEnumerate {
    uint32_t index;
    KvpValue value;
};
static_assert(sizeof(KvpEnumerate) == 2576 && offsetof(KvpEnumerate, value) == 4);

// The bytes a KVP message needs for each operation (KvpHeader included). OpenVMM sends every
// operation at the largest size, so a receiver accepts anything from the operation's size up to
// kKvpMaxMessage.
inline constexpr uint32_t kKvpGetSetMessage = sizeof(KvpHeader) + sizeof(KvpValue);
inline constexpr uint32_t kKvpDeleteMessage = sizeof(KvpHeader) + sizeof(KvpDelete);
inline constexpr uint32_t kKvpEnumerateMessage = sizeof(KvpHeader) + sizeof(KvpEnumerate);
inline constexpr uint32_t kKvpMaxMessage = kKvpEnumerateMessage;
static_assert(kKvpGetSetMessage == 2576 && kKvpDeleteMessage == 520 && kKvpMaxMessage == 2580);
inline constexpr Version kKvpVersions[] = {{3, 0}, {4, 0}, {5, 0}};

// --- guest log (hvkvm) ------------------------------------------------------------------------------

// One line of the guest's log; the text (UTF-8, no NUL, no newline) follows, message_size -
// sizeof(GuestLogMessage) bytes of it, 1..kGuestLogMaxText.
struct GuestLogMessage {
    uint32_t level;    // GuestLogLevel
    uint32_t dropped;  // lines the guest could not send since the previous one (its ring was full)
};
static_assert(sizeof(GuestLogMessage) == 8 && offsetof(GuestLogMessage, dropped) == 4);
enum class GuestLogLevel : uint32_t { kInfo = 0, kWarning = 1, kError = 2 };
inline constexpr uint32_t kGuestLogMaxText = 480;
inline constexpr Version kGuestLogVersions[] = {{1, 0}};

// --- limits -------------------------------------------------------------------------------------

// The largest message body any IC here sends; a packet payload is at most the framing plus this.
// (Hyper-V's KVP IP-address messages are larger; they are not supported and a receiver refuses
// them as oversized.)
inline constexpr uint32_t kMaxBody = kKvpMaxMessage;
inline constexpr uint32_t kMaxPacketPayload = kFramingBytes + kMaxBody;
static_assert(sizeof(ShutdownMessage) <= kMaxBody && kMaxNegotiateBody <= kMaxBody &&
              sizeof(GuestLogMessage) + kGuestLogMaxText <= kMaxBody);

// --- channels ------------------------------------------------------------------------------------

// Interface GUIDs are Hyper-V's (Linux include/linux/hyperv.h HV_*_GUID; OpenVMM
// hyperv_ic_protocol). Instance GUIDs are Hyper-V's where OpenVMM publishes them (shutdown, time
// sync, KVP); heartbeat's is hvkvm's own, as are both GUIDs of the guest log.
struct Service {
    const char* name;
    protocol::Guid interface_type;
    protocol::Guid instance;
    const Version* versions;  // the message versions the host offers, oldest first
    uint32_t version_count;
    MessageType message_type;
};

template <uint32_t N>
constexpr Service make_service(const char* name, protocol::Guid interface_type, protocol::Guid instance,
                               const Version (&versions)[N], MessageType type) {
    return Service{name, interface_type, instance, versions, N, type};
}

inline constexpr Service kHeartbeat = make_service(
    "heartbeat", {0x57164f39, 0x9115, 0x4e78, {0xab, 0x55, 0x38, 0x2f, 0x3b, 0xd5, 0x42, 0x2d}},
    {0x6b1f6e4a, 0x3c52, 0x4a8d, {0x9e, 0x07, 0x2f, 0x1d, 0x64, 0xb8, 0x0c, 0x31}}, kHeartbeatVersions,
    MessageType::kHeartbeat);
inline constexpr Service kShutdown = make_service(
    "shutdown", {0x0e0b6031, 0x5213, 0x4934, {0x81, 0x8b, 0x38, 0xd9, 0x0c, 0xed, 0x39, 0xdb}},
    {0xb6650ff7, 0x33bc, 0x4840, {0x80, 0x48, 0xe0, 0x67, 0x67, 0x86, 0xf3, 0x93}}, kShutdownVersions,
    MessageType::kShutdown);
inline constexpr Service kTimeSync = make_service(
    "timesync", {0x9527e630, 0xd0ae, 0x497b, {0xad, 0xce, 0xe8, 0x0a, 0xb0, 0x17, 0x5c, 0xaf}},
    {0x2dd1ce17, 0x079e, 0x403c, {0xb3, 0x52, 0xa1, 0x92, 0x1e, 0xe2, 0x07, 0xee}}, kTimeSyncVersions,
    MessageType::kTimeSync);
inline constexpr Service kKvp = make_service(
    "kvp", {0xa9a0f4e7, 0x5a45, 0x4d96, {0xb8, 0x27, 0x8a, 0x84, 0x1e, 0x8c, 0x03, 0xe6}},
    {0x242ff919, 0x07db, 0x4180, {0x9c, 0x2e, 0xb8, 0x6c, 0xb6, 0x8c, 0x8c, 0x55}}, kKvpVersions,
    MessageType::kKvpExchange);
inline constexpr Service kGuestLog = make_service(
    "guest-log", {0x8d2f6c1e, 0x4b7a, 0x4e35, {0xa1, 0x9c, 0x3e, 0x50, 0x7b, 0xd2, 0x64, 0x0f}},
    {0x1c9e4d27, 0x6a83, 0x4f10, {0xb5, 0x2d, 0x97, 0x0e, 0x4c, 0x18, 0xa6, 0x5b}}, kGuestLogVersions,
    MessageType::kGuestLog);

// Offers of IC channels are message-mode named pipes, as Hyper-V and OpenVMM make them: offer flags
// "enumerate device interface" and "named pipe mode", and the pipe type in the first 4 bytes of
// the offer's user-defined area.
inline constexpr uint16_t kOfferFlags = protocol::kOfferEnumerateDeviceInterface | protocol::kOfferNamedPipeMode;
inline constexpr uint32_t kPipeTypeMessage = 4;

}  // namespace hvkvm::vmbus::services::ic
