// libFuzzer target: the host's side of the channel protocol facing a hostile guest. Each message
// goes through parse_guest_message(); GPADL messages then go through a GpadlAssembler as the
// channel server would use it.
#include <cstdint>
#include <cstdlib>

#include "vmbus/fuzz/fuzz_messages.h"
#include "vmbus/protocol/gpadl.h"
#include "vmbus/protocol/message_codec.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::protocol;

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

uint64_t g_storage[kGpadlMaxWords];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    GpadlAssembler assembler;
    fuzz::for_each_message(data, size, [&](const uint8_t* bytes, uint32_t length) {
        GuestMessage message;
        const ParseError error = parse_guest_message(bytes, length, message);
        if (error != ParseError::kNone) {
            check(message.type == MessageType::kInvalid);
            return;
        }
        check(length >= sizeof(MessageHeader) && length <= kMaxMessageSize);
        if (message.type == MessageType::kGpadlHeader) {
            const GpadlHeaderMessage& header = message.gpadl_header;
            check(header.word_count >= 1 && header.word_count <= kGpadlHeaderMaxWords);
            check(header.word_count <= GpadlAssembler::words_needed(header));
            assembler.start(header, g_storage, kGpadlMaxWords);
        } else if (message.type == MessageType::kGpadlBody) {
            check(message.gpadl_body.word_count >= 1 && message.gpadl_body.word_count <= kGpadlBodyMaxWords);
            assembler.add_body(message.gpadl_body);
        }
        if (assembler.is_complete()) {
            uint32_t used = 0;
            const GpaRangeList ranges = assembler.ranges();
            check(validate_gpa_ranges(ranges.words, ranges.word_count, ranges.range_count, used) == GpaRangeError::kNone);
            check(used == ranges.word_count);
        }
    });
    return 0;
}
