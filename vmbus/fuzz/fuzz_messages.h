// Shared by the channel-message fuzz targets. The input is a sequence of entries, each a length
// byte and that many message bytes, so one input drives a whole conversation. Length bytes above
// kMaxMessageSize + 8 are not messages but actions of the local side (rescind an offer, open a
// channel...), numbered from kFirstAction, so the fuzzer interleaves both sides.
#pragma once

#include <cstdint>

#include "vmbus/fuzz/fuzz_input.h"
#include "vmbus/protocol/message_codec.h"

namespace hvkvm::vmbus::fuzz {

inline constexpr uint8_t kFirstAction = 249;

template <typename Message, typename Act>
void for_each_entry(const uint8_t* data, size_t size, Message message, Act act) {
    FuzzInput input(data, size);
    while (input.remaining() > 0) {
        const uint8_t length = input.take<uint8_t>();
        if (length >= kFirstAction) {
            act(static_cast<uint32_t>(length - kFirstAction));
            continue;
        }
        size_t taken = 0;
        const uint8_t* bytes = input.take_bytes(length, taken);
        message(bytes, static_cast<uint32_t>(taken));
    }
}

}  // namespace hvkvm::vmbus::fuzz
