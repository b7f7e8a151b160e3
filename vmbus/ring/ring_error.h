// What ring operations report. Three kinds: ordinary flow (kEmpty, kFull), caller mistakes, and
// corruption by the peer. Corruption means the peer wrote something no correct peer writes; the
// ring stops where it was (nothing is consumed or published past the fault) and the caller should
// treat the channel as broken (close it). is_corruption() tells them apart.
#pragma once

#include <stdint.h>

namespace hvkvm::vmbus::ring {

enum class RingError : uint8_t {
    kOk,
    kEmpty,  // reader: no packet
    kFull,   // writer: not enough room now; pending_send_size asks the reader for a signal

    // The caller's mistake: nothing was changed.
    kBadMemory,            // the data area is not a page multiple within [kMinDataSize, kMaxDataSize]
    kNotAttached,          // attach() has not succeeded
    kPacketTooLarge,       // the packet could never fit this ring, or exceeds the 16-bit length
    kBadArgument,          // a malformed outgoing packet (bad ranges, unsupported type) or a
                           // payload access outside the packet / to a released packet
    kRangeBufferTooSmall,  // the packet's GPA ranges exceed the caller's range buffer (not consumed)

    // The peer's corruption.
    kCorruptReadIndex,        // read index out of range, unaligned, or moved outside the published data
    kCorruptWriteIndex,       // write index out of range, unaligned, or moved backwards / into unread data
    kCorruptPacketLength,     // data shorter than a packet, or len8 runs past the published data
    kCorruptPacketOffset,     // offset8 below the descriptor (or type header) or beyond len8
    kCorruptPacketType,       // not in-band, GPA-direct or completion
    kCorruptPacketFlags,      // flags other than completion-requested
    kCorruptGpaRanges,        // GPA-direct range count or ranges malformed
};

const char* ring_error_name(RingError error);

constexpr bool is_corruption(RingError error) { return error >= RingError::kCorruptReadIndex; }

}  // namespace hvkvm::vmbus::ring
