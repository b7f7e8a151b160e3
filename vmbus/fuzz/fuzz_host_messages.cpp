// libFuzzer target: the guest's side of the channel protocol facing a hostile host. Each message
// goes through parse_host_message().
#include <cstdint>
#include <cstdlib>

#include "vmbus/fuzz/fuzz_messages.h"
#include "vmbus/protocol/message_codec.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::protocol;

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::for_each_message(data, size, [&](const uint8_t* bytes, uint32_t length) {
        HostMessage message;
        const ParseError error = parse_host_message(bytes, length, message);
        if (error != ParseError::kNone) {
            check(message.type == MessageType::kInvalid);
            return;
        }
        check(length >= sizeof(MessageHeader) && length <= kMaxMessageSize);
        // Re-encoding the accepted fixed part and parsing again gives the same message.
        if (message.type == MessageType::kOfferChannel) {
            MessageBuffer again = encode(message.offer_channel);
            HostMessage reparsed;
            check(parse_host_message(again.bytes, again.size, reparsed) == ParseError::kNone);
            check(__builtin_memcmp(&reparsed.offer_channel, &message.offer_channel, sizeof(OfferChannel)) == 0 ||
                  message.offer_channel.header.padding != 0);
        }
    });
    return 0;
}
