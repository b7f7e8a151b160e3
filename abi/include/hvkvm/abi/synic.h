// The synthetic interrupt controller (SynIC) as the TLFS defines it: per-VP MSRs, the message page
// (SIMP: one 256-byte message slot per SINT) and the event-flags page (SIEFP: one 2048-bit array
// per SINT). VMBus delivers channel messages into SINT 2's slot and channel interrupts as SINT 2
// event flags (bit = the channel's relid). Compiled by the VMM, the root partition and the guest;
// every layout is pinned with static_assert. docs/hypercalls.md describes the behaviour.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::abi::synic {

// ---------------------------------------------------------------------------------------------
// MSRs (per VP)
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kMsrScontrol = 0x40000080;  // bit 0: SynIC enabled
inline constexpr uint32_t kMsrSversion = 0x40000081;  // read-only: kSynicVersion
inline constexpr uint32_t kMsrSiefp = 0x40000082;     // bit 0: enabled; bits 63:12: page GPFN
inline constexpr uint32_t kMsrSimp = 0x40000083;      // bit 0: enabled; bits 63:12: page GPFN
inline constexpr uint32_t kMsrEom = 0x40000084;       // write-only: end of message
inline constexpr uint32_t kMsrSint0 = 0x40000090;     // ... kMsrSint0 + 15
inline constexpr uint32_t kSintCount = 16;

inline constexpr uint64_t kSynicVersion = 1;
inline constexpr uint64_t kScontrolEnable = 1ull << 0;
inline constexpr uint64_t kPageEnable = 1ull << 0;  // SIEFP and SIMP
inline constexpr uint32_t kPageGpfnShift = 12;

// SINTx: vector (16..255), masked, auto-EOI, polling. A SINT starts masked.
inline constexpr uint64_t kSintVectorMask = 0xff;
inline constexpr uint64_t kSintMasked = 1ull << 16;
inline constexpr uint64_t kSintAutoEoi = 1ull << 17;
inline constexpr uint64_t kSintPolling = 1ull << 18;
inline constexpr uint64_t kSintReservedMask = ~(kSintVectorMask | kSintMasked | kSintAutoEoi | kSintPolling);
inline constexpr uint64_t kSintInitialValue = kSintMasked;
inline constexpr uint32_t kSintMinimumVector = 16;

// ---------------------------------------------------------------------------------------------
// Messages (HV_MESSAGE): one 256-byte slot per SINT in the SIMP page
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kMessageTypeNone = 0;      // the slot is free
inline constexpr uint32_t kMessageTypeVmbus = 1;     // VMBus channel messages (both directions)
inline constexpr uint32_t kMessagePayloadMax = 240;
inline constexpr uint8_t kMessageFlagPending = 1u << 0;  // another message waits: write EOM when done

struct MessageHeader {
    uint32_t message_type;
    uint8_t payload_size;
    uint8_t message_flags;
    uint8_t reserved[2];
    uint64_t sender;  // port id / sender id; 0 for VMBus
};
static_assert(offsetof(MessageHeader, message_type) == 0);
static_assert(offsetof(MessageHeader, payload_size) == 4);
static_assert(offsetof(MessageHeader, message_flags) == 5);
static_assert(offsetof(MessageHeader, sender) == 8);
static_assert(sizeof(MessageHeader) == 16);

struct Message {
    MessageHeader header;
    uint8_t payload[kMessagePayloadMax];
};
static_assert(offsetof(Message, payload) == 16);
static_assert(sizeof(Message) == 256);
inline constexpr uint32_t kMessagePageSlots = kSintCount;  // 16 x 256 bytes = one page

// ---------------------------------------------------------------------------------------------
// Event flags: one 2048-bit array per SINT in the SIEFP page
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kEventFlagsPerSint = 2048;
inline constexpr uint32_t kEventFlagBytesPerSint = kEventFlagsPerSint / 8;
static_assert(kEventFlagBytesPerSint * kSintCount == 4096);

// The SINT VMBus uses for its messages and channel interrupts.
inline constexpr uint32_t kVmbusSint = 2;

// ---------------------------------------------------------------------------------------------
// SynIC echo (a test device, config `debug.synic_echo`): the guest posts an EchoRequest with
// HvPostMessage to kEchoConnectionId, and the VMM answers through the SynIC of the VP named in
// it: a message into that SINT's slot (the request's data echoed), or an event flag.
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kEchoConnectionId = 0x000300;
inline constexpr uint32_t kEchoMessageType = 0x7;  // the message type of requests and echoes

enum class EchoKind : uint32_t { kMessage = 1, kEventFlag = 2 };

struct EchoRequest {
    EchoKind kind;
    uint32_t target_vp;
    uint32_t sint;
    uint32_t flag;      // kEventFlag: the flag to set
    uint32_t repeat;    // kMessage: send the echo this many times (1..kMessagePayloadMax), in order
    uint32_t reserved;
    uint8_t data[kMessagePayloadMax - 24];  // kMessage: echoed (the echo carries the repeat index in data[0])
};
static_assert(offsetof(EchoRequest, target_vp) == 4);
static_assert(offsetof(EchoRequest, repeat) == 16);
static_assert(offsetof(EchoRequest, data) == 24);
static_assert(sizeof(EchoRequest) == kMessagePayloadMax);

}  // namespace hvkvm::abi::synic
