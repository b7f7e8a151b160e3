// The Hyper-V VMBus ring buffer as it lies in guest memory (Linux include/linux/hyperv.h
// `struct hv_ring_buffer`, `struct vmpacket_descriptor`; OpenVMM vmbus_ring). One ring per
// direction: a 4 KiB control page, then a data area of whole pages holding 8-byte-aligned packets.
// docs/vmbus.md draws the layout.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::vmbus::ring {

inline constexpr uint32_t kControlPageSize = 4096;
inline constexpr uint32_t kDataPageSize = 4096;
inline constexpr uint32_t kPacketAlignment = 8;
// Bounds on the data area this implementation accepts. The upper bound keeps every index + length
// sum far below 2^32 (Linux rings are at most a few MiB).
inline constexpr uint32_t kMinDataSize = kDataPageSize;
inline constexpr uint32_t kMaxDataSize = 1u << 30;

// The control page. The writer owns write_index, pending_send_size and feature_bits; the reader
// owns read_index and interrupt_mask. Each side only ever trusts its own private copy of the fields
// it owns and validates the fields the peer owns on every load.
struct ControlPage {
    uint32_t write_index;        // byte offset in the data area where the next packet goes
    uint32_t read_index;         // byte offset of the first packet not yet consumed
    uint32_t interrupt_mask;     // non-zero: the reader is draining, the writer need not signal
    uint32_t pending_send_size;  // non-zero: the blocked writer needs more free bytes than this
    uint32_t reserved1[12];
    uint32_t feature_bits;       // kFeaturePendingSendSize: the writer uses pending_send_size
    uint8_t reserved2[4028];
};
static_assert(sizeof(ControlPage) == kControlPageSize);
static_assert(offsetof(ControlPage, write_index) == 0);
static_assert(offsetof(ControlPage, read_index) == 4);
static_assert(offsetof(ControlPage, interrupt_mask) == 8);
static_assert(offsetof(ControlPage, pending_send_size) == 12);
static_assert(offsetof(ControlPage, feature_bits) == 64);

inline constexpr uint32_t kFeaturePendingSendSize = 1u << 0;

// Packet types (Linux `enum vmbus_packet_type`). This ring carries the three that VSPs other than
// netvsc use, as OpenVMM's does (it also takes transfer pages, 7, which only netvsc needs).
enum class PacketType : uint16_t {
    kInBand = 0x6,
    kTransferPages = 0x7,  // not supported: refused as corrupt
    kGpaDirect = 0x9,
    kCompletion = 0xb,
};

inline constexpr uint16_t kPacketFlagCompletionRequested = 1u << 0;

// Starts every packet. offset8 and len8 count 8-byte units from the packet start: the payload is
// [offset8 * 8, len8 * 8); a trailer follows at len8 * 8.
struct PacketDescriptor {
    uint16_t type;
    uint16_t offset8;
    uint16_t len8;
    uint16_t flags;
    uint64_t transaction_id;
};
static_assert(sizeof(PacketDescriptor) == 16);
static_assert(offsetof(PacketDescriptor, type) == 0);
static_assert(offsetof(PacketDescriptor, offset8) == 2);
static_assert(offsetof(PacketDescriptor, len8) == 4);
static_assert(offsetof(PacketDescriptor, flags) == 6);
static_assert(offsetof(PacketDescriptor, transaction_id) == 8);

// Follows the descriptor of a GPA-direct packet; range_count GPA ranges (vmbus/gpa) come next,
// all before offset8 * 8 (Linux `struct vmdata_gpa_direct`).
struct GpaDirectHeader {
    uint32_t reserved;
    uint32_t range_count;
};
static_assert(sizeof(GpaDirectHeader) == 8);
static_assert(offsetof(GpaDirectHeader, range_count) == 4);

// Follows every packet: the packet's start offset in the high half (Linux writes the u64
// `write_index << 32`). Informational; readers (Linux, OpenVMM, this one) do not rely on it.
struct PacketTrailer {
    uint32_t reserved;
    uint32_t packet_start;
};
static_assert(sizeof(PacketTrailer) == 8);
static_assert(offsetof(PacketTrailer, packet_start) == 4);

inline constexpr uint32_t kDescriptorSize = sizeof(PacketDescriptor);
inline constexpr uint32_t kTrailerSize = sizeof(PacketTrailer);
inline constexpr uint32_t kGpaDirectPrefixSize = kDescriptorSize + sizeof(GpaDirectHeader);
// The smallest packet a reader can be handed: a bare descriptor and its trailer.
inline constexpr uint32_t kMinPacketSize = kDescriptorSize + kTrailerSize;

constexpr uint32_t align_to_packet(uint32_t bytes) {
    return (bytes + kPacketAlignment - 1) & ~(kPacketAlignment - 1);
}

}  // namespace hvkvm::vmbus::ring
