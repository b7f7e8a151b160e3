// Shared by the channel-message fuzz targets: the input is a sequence of messages, each a length
// byte followed by that many bytes (so one input can drive a conversation).
#pragma once

#include <cstdint>

#include "vmbus/fuzz/fuzz_input.h"

namespace hvkvm::vmbus::fuzz {

template <typename Handle>
void for_each_message(const uint8_t* data, size_t size, Handle handle) {
    FuzzInput input(data, size);
    while (input.remaining() > 0) {
        const uint8_t length = input.take<uint8_t>();
        size_t taken = 0;
        const uint8_t* bytes = input.take_bytes(length, taken);
        handle(bytes, static_cast<uint32_t>(taken));
    }
}

}  // namespace hvkvm::vmbus::fuzz
