#include "vmbus/ring/ring_error.h"

namespace hvkvm::vmbus::ring {

const char* ring_error_name(RingError error) {
    switch (error) {
        case RingError::kOk: return "ok";
        case RingError::kEmpty: return "empty";
        case RingError::kFull: return "full";
        case RingError::kBadMemory: return "bad ring memory";
        case RingError::kNotAttached: return "not attached";
        case RingError::kPacketTooLarge: return "packet too large";
        case RingError::kBadArgument: return "bad argument";
        case RingError::kRangeBufferTooSmall: return "range buffer too small";
        case RingError::kCorruptReadIndex: return "corrupt read index";
        case RingError::kCorruptWriteIndex: return "corrupt write index";
        case RingError::kCorruptPacketLength: return "corrupt packet length";
        case RingError::kCorruptPacketOffset: return "corrupt packet offset";
        case RingError::kCorruptPacketType: return "corrupt packet type";
        case RingError::kCorruptPacketFlags: return "corrupt packet flags";
        case RingError::kCorruptGpaRanges: return "corrupt GPA ranges";
    }
    return "unknown";
}

}  // namespace hvkvm::vmbus::ring
