// The synthetic storage protocol (storvsc <-> storvsp): the packets a guest's SCSI controller
// driver exchanges with the host over one VMBus channel and its sub-channels. Facts from Linux
// drivers/scsi/storvsc_drv.c and OpenVMM vm/devices/storage/storvsp (protocol.rs, lib.rs); every
// size and offset is pinned below. Compiled by host and guest (freestanding: no library calls).
//
// One vstor packet per VMBus packet, 64 bytes (kPacketSize): {operation, flags, status} and a
// 0x34-byte body whose meaning depends on the operation. The guest sends every request with
// "completion requested" and a transaction id it recognises; the host answers with a completion
// packet carrying the same id, operation COMPLETE_IO and an NTSTATUS in `status`. EXECUTE_SRB
// with data is a GPA-direct packet whose single range is the data buffer (Linux storvsc_do_io).
// The host may also send unsolicited packets (transaction id 0): ENUMERATE_BUS, REMOVE_DEVICE.
//
// Initialization on the primary channel, in this order (OpenVMM's InitState):
//   BEGIN_INITIALIZATION -> QUERY_PROTOCOL_VERSION (repeated, newest first, until status 0)
//   -> QUERY_PROPERTIES -> [CREATE_SUB_CHANNELS] -> END_INITIALIZATION -> ready
// then EXECUTE_SRB on any channel, CREATE_SUB_CHANNELS again on the primary.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmbus/protocol/channel_messages.h"

namespace hvkvm::vmbus::services::storage {

// --- Offers -------------------------------------------------------------------------------------

// A synthetic SCSI controller (Linux HV_SCSI_GUID): LUNs behind path/target ids, sub-channels.
inline constexpr protocol::Guid kScsiInterfaceType = {0xba6163d9, 0x04a1, 0x4d29, {0xb6, 0x05, 0x72, 0xe2, 0xff, 0xb1, 0xdc, 0x7f}};
// The accelerated path of an emulated IDE disk (HV_IDE_GUID): one disk, no sub-channels.
inline constexpr protocol::Guid kIdeAcceleratorInterfaceType = {0x32412632, 0x86cb, 0x44a2, {0x9b, 0x5c, 0x50, 0xd1, 0x41, 0x73, 0x54, 0xf5}};
// Synthetic Fibre Channel (HV_SYNTHFC_GUID): not offered here; FC_HBA_DATA is refused.
inline constexpr protocol::Guid kFibreChannelInterfaceType = {0x2f9bcc4a, 0x0069, 0x4af3, {0xb7, 0x6b, 0x6f, 0xd0, 0xbe, 0x52, 0x8c, 0xda}};

// Instance GUID rules.
//  - SCSI controller: any instance unique in the VM (Linux uses it only to name the device).
//    hvkvm numbers its controllers: data1's low byte is the controller number.
//  - Sub-channel: the same interface type and instance as its primary, sub_channel_index 1..n
//    (Linux vmbus_process_offer matches them to the primary by both GUIDs).
//  - IDE accelerator: data1 = IDE channel, data2 = device, data3 = 0x8899, data4 zero (OpenVMM
//    build_ide); Linux takes the SCSI target from instance bytes 4..5, i.e. data2.
constexpr protocol::Guid scsi_controller_instance(uint8_t controller) {
    return protocol::Guid{0x5ca1ab00u | controller, 0x76d3, 0x4b7a, {0x8e, 0x61, 0x68, 0x76, 0x6b, 0x76, 0x6d, 0x00}};
}
constexpr protocol::Guid ide_accelerator_instance(uint8_t channel, uint8_t device) {
    return protocol::Guid{channel, device, 0x8899, {0, 0, 0, 0, 0, 0, 0, 0}};
}

// In OfferChannel::user_defined of an IDE accelerator offer (OpenVMM OfferProperties): older
// Windows drivers find their IDE device here.
struct IdeOfferProperties {
    uint16_t reserved;
    uint8_t path_id;
    uint8_t target_id;
    uint32_t reserved2;
    uint32_t flags;  // kIdeOfferFlag
    uint32_t reserved3[3];
};
static_assert(sizeof(IdeOfferProperties) == 24);
static_assert(offsetof(IdeOfferProperties, path_id) == 2 && offsetof(IdeOfferProperties, target_id) == 3);
static_assert(offsetof(IdeOfferProperties, flags) == 8);
inline constexpr uint32_t kIdeOfferFlag = 0x2;

// --- Protocol versions --------------------------------------------------------------------------

// major << 8 | minor (Linux VMSTOR_PROTO_VERSION). The guest offers newest first in
// QUERY_PROTOCOL_VERSION and falls back on a non-zero status.
constexpr uint16_t make_version(uint8_t major, uint8_t minor) { return static_cast<uint16_t>(major << 8 | minor); }
inline constexpr uint16_t kVersionWin6 = make_version(2, 0);
inline constexpr uint16_t kVersionWin7 = make_version(4, 2);
inline constexpr uint16_t kVersionWin8 = make_version(5, 1);
inline constexpr uint16_t kVersionWin8_1 = make_version(6, 0);
inline constexpr uint16_t kVersionWin10 = make_version(6, 2);

// Accepted: Win8 and later (what Linux offers: 6.2, 6.0, 5.1). All three carry the full 0x34-byte
// vmscsi_request with the Win8 extension and support sub-channels, so one packet layout serves
// every accepted version. Win6/Win7 (a 0x24-byte request, no multi-channel) are refused with
// kStatusRevisionMismatch, as OpenVMM refuses versions it does not know. 6.2 adds nothing on the
// wire; Linux lets it enable WRITE SAME, which this host's target does not report anyway.
constexpr bool is_accepted_version(uint16_t version) {
    return version == kVersionWin10 || version == kVersionWin8_1 || version == kVersionWin8;
}

// --- Packets ------------------------------------------------------------------------------------

enum class Operation : uint32_t {
    kCompleteIo = 1,            // host -> guest: the answer to a request
    kRemoveDevice = 2,          // host -> guest, unsolicited: rescan (a LUN went away)
    kExecuteSrb = 3,            // guest -> host: a SCSI command (vmscsi_request)
    kResetLun = 4,              // guest -> host: no-ops on Hyper-V; answered with success
    kResetAdapter = 5,
    kResetBus = 6,
    kBeginInitialization = 7,
    kEndInitialization = 8,
    kQueryProtocolVersion = 9,  // body: ProtocolVersion
    kQueryProperties = 10,      // answer body: ChannelProperties
    kEnumerateBus = 11,         // host -> guest, unsolicited: rescan (a LUN was added)
    kFcHbaData = 12,            // Fibre Channel only: refused here
    kCreateSubChannels = 13,    // guest -> host, primary channel: body u16 count
};

// vstor_packet.flags: the guest wants an answer (Linux sets it on every request).
inline constexpr uint32_t kFlagRequestCompletion = 0x1;

// NTSTATUS values in vstor_packet.status (OpenVMM protocol.rs NtStatus).
inline constexpr uint32_t kStatusSuccess = 0x00000000;
inline constexpr uint32_t kStatusBufferOverflow = 0x80000005;
inline constexpr uint32_t kStatusDeviceBusy = 0x80000011;
inline constexpr uint32_t kStatusUnsuccessful = 0xc0000001;
inline constexpr uint32_t kStatusInvalidParameter = 0xc000000d;
inline constexpr uint32_t kStatusInvalidDeviceRequest = 0xc0000010;
inline constexpr uint32_t kStatusRevisionMismatch = 0xc0000059;
inline constexpr uint32_t kStatusDeviceNotConnected = 0xc000009d;
inline constexpr uint32_t kStatusIoTimeout = 0xc00000b5;
inline constexpr uint32_t kStatusDeviceDoesNotExist = 0xc00000c0;
inline constexpr uint32_t kStatusInvalidDeviceState = 0xc0000184;
inline constexpr uint32_t kStatusIoDeviceError = 0xc0000185;

// SRB status (vmscsi_request.srb_status): a 6-bit code and two flag bits (Linux SRB_STATUS_*,
// Windows srb.h).
inline constexpr uint8_t kSrbStatusPending = 0x00;
inline constexpr uint8_t kSrbStatusSuccess = 0x01;
inline constexpr uint8_t kSrbStatusAborted = 0x02;
inline constexpr uint8_t kSrbStatusError = 0x04;           // with autosense: CHECK CONDITION, sense valid
inline constexpr uint8_t kSrbStatusInvalidRequest = 0x06;  // the SRB itself is malformed
inline constexpr uint8_t kSrbStatusTimeout = 0x09;
inline constexpr uint8_t kSrbStatusSelectionTimeout = 0x0a;  // no such path/target
inline constexpr uint8_t kSrbStatusBusReset = 0x0e;
inline constexpr uint8_t kSrbStatusDataOverrun = 0x12;
inline constexpr uint8_t kSrbStatusInvalidLun = 0x20;  // target exists, LUN does not (Linux removes it)
inline constexpr uint8_t kSrbStatusInternalError = 0x30;
inline constexpr uint8_t kSrbStatusQueueFrozen = 0x40;
inline constexpr uint8_t kSrbStatusAutosenseValid = 0x80;  // sense_data holds sense_info_length bytes
constexpr uint8_t srb_status_code(uint8_t status) {
    return static_cast<uint8_t>(status & ~(kSrbStatusAutosenseValid | kSrbStatusQueueFrozen));
}

// vmscsi_request.srb_flags (the Win8 extension) as Linux sets them; informational to the host.
inline constexpr uint32_t kSrbFlagQueueActionEnable = 0x00000002;
inline constexpr uint32_t kSrbFlagDisableSynchTransfer = 0x00000008;
inline constexpr uint32_t kSrbFlagDataIn = 0x00000040;
inline constexpr uint32_t kSrbFlagDataOut = 0x00000080;
inline constexpr uint32_t kSrbFlagNoQueueFreeze = 0x00000100;

// vmscsi_request.data_in (Linux enum storvsc_request_type): the direction of the data buffer.
inline constexpr uint8_t kDataOut = 0;      // WRITE_TYPE: guest memory -> device
inline constexpr uint8_t kDataIn = 1;       // READ_TYPE: device -> guest memory
inline constexpr uint8_t kDataNone = 2;     // UNKNOWN_TYPE: no data

inline constexpr uint32_t kCdbMaxLength = 16;     // STORVSC_MAX_CMD_LEN
inline constexpr uint32_t kSenseBufferSize = 20;  // STORVSC_SENSE_BUFFER_SIZE, all versions since Win8

// vmscsi_request with the Win8 extension (from `reserve` on), packed as Linux declares it.
struct ScsiRequest {
    uint16_t length;  // sizeof(ScsiRequest) as Linux sends it; informational
    uint8_t srb_status;
    uint8_t scsi_status;
    uint8_t port_number;  // the guest's host number; ignored
    uint8_t path_id;
    uint8_t target_id;
    uint8_t lun;
    uint8_t cdb_length;
    uint8_t sense_info_length;  // request: room for sense; answer: sense bytes valid
    uint8_t data_in;            // kDataOut, kDataIn or kDataNone
    uint8_t reserved;
    uint32_t data_transfer_length;  // request: buffer bytes; answer: bytes moved
    union {
        uint8_t cdb[kCdbMaxLength];
        uint8_t sense_data[kSenseBufferSize];
    };
    // Win8 extension.
    uint16_t reserve;
    uint8_t queue_tag;
    uint8_t queue_action;
    uint32_t srb_flags;
    uint32_t time_out_value;  // seconds
    uint32_t queue_sort_key;
} __attribute__((packed));
static_assert(sizeof(ScsiRequest) == 0x34);
static_assert(offsetof(ScsiRequest, srb_status) == 2 && offsetof(ScsiRequest, scsi_status) == 3);
static_assert(offsetof(ScsiRequest, port_number) == 4 && offsetof(ScsiRequest, path_id) == 5);
static_assert(offsetof(ScsiRequest, target_id) == 6 && offsetof(ScsiRequest, lun) == 7);
static_assert(offsetof(ScsiRequest, cdb_length) == 8 && offsetof(ScsiRequest, sense_info_length) == 9);
static_assert(offsetof(ScsiRequest, data_in) == 10 && offsetof(ScsiRequest, data_transfer_length) == 12);
static_assert(offsetof(ScsiRequest, cdb) == 16 && offsetof(ScsiRequest, sense_data) == 16);
static_assert(offsetof(ScsiRequest, reserve) == 36 && offsetof(ScsiRequest, queue_tag) == 38);
static_assert(offsetof(ScsiRequest, queue_action) == 39 && offsetof(ScsiRequest, srb_flags) == 40);
static_assert(offsetof(ScsiRequest, time_out_value) == 44 && offsetof(ScsiRequest, queue_sort_key) == 48);
// Before Win8 the request ended at the Win8 extension.
inline constexpr uint32_t kScsiRequestSizeWin7 = offsetof(ScsiRequest, reserve);
static_assert(kScsiRequestSizeWin7 == 0x24);

// QUERY_PROPERTIES answer.
struct ChannelProperties {
    uint32_t reserved;
    uint16_t max_channel_count;  // sub-channels the guest may ask for (Linux: min(cpus - 1, this))
    uint16_t reserved1;
    uint32_t flags;               // kChannelSupportsMultiChannel
    uint32_t max_transfer_bytes;  // largest data buffer of one SRB (Linux: max_sectors)
    uint64_t reserved2;
} __attribute__((packed));
static_assert(sizeof(ChannelProperties) == 24);
static_assert(offsetof(ChannelProperties, max_channel_count) == 4);
static_assert(offsetof(ChannelProperties, flags) == 8);
static_assert(offsetof(ChannelProperties, max_transfer_bytes) == 12);
static_assert(offsetof(ChannelProperties, reserved2) == 16);
inline constexpr uint32_t kChannelSupportsMultiChannel = 0x1;

// QUERY_PROTOCOL_VERSION request and answer.
struct ProtocolVersion {
    uint16_t major_minor;
    uint16_t revision;  // Windows build revision; Linux sends 0 and it is not checked
} __attribute__((packed));
static_assert(sizeof(ProtocolVersion) == 4 && offsetof(ProtocolVersion, revision) == 2);

// FC_HBA_DATA answer (Fibre Channel only; this host refuses the request).
struct FcWwnPacket {
    uint8_t primary_active;
    uint8_t reserved1[3];
    uint8_t primary_port_wwn[8];
    uint8_t primary_node_wwn[8];
    uint8_t secondary_port_wwn[8];
    uint8_t secondary_node_wwn[8];
} __attribute__((packed));
static_assert(sizeof(FcWwnPacket) == 36);
static_assert(offsetof(FcWwnPacket, primary_port_wwn) == 4 && offsetof(FcWwnPacket, secondary_node_wwn) == 28);

inline constexpr uint32_t kPacketBodySize = 0x34;

struct Packet {
    Operation operation;
    uint32_t flags;   // kFlagRequestCompletion
    uint32_t status;  // NTSTATUS, in answers
    union {
        ScsiRequest srb;
        ChannelProperties properties;
        ProtocolVersion version;
        FcWwnPacket wwn;
        uint16_t sub_channel_count;  // CREATE_SUB_CHANNELS
        uint8_t body[kPacketBodySize];
    };
} __attribute__((packed));
static_assert(sizeof(Packet) == 64);
static_assert(offsetof(Packet, flags) == 4 && offsetof(Packet, status) == 8);
static_assert(offsetof(Packet, srb) == 12 && offsetof(Packet, properties) == 12 && offsetof(Packet, version) == 12);
static_assert(offsetof(Packet, sub_channel_count) == 12 && offsetof(Packet, body) == 12);
inline constexpr uint32_t kPacketHeaderSize = offsetof(Packet, body);
inline constexpr uint32_t kPacketSize = sizeof(Packet);

// For logs on either side.
const char* operation_name(uint32_t operation);
const char* srb_status_name(uint8_t srb_status);

}  // namespace hvkvm::vmbus::services::storage
