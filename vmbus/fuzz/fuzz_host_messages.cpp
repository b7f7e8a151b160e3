// libFuzzer target: the guest's side of the channel protocol facing a hostile host. Each message
// goes through parse_host_message() and a ChannelClient that has started connecting; actions make
// the client's own requests (GPADL, open, close, teardown, release, unload, connect) on whatever
// the host offered. Checked: every message the client sends parses as a guest message and goes to
// a 24-bit connection id.
#include <cstdint>
#include <cstdlib>

#include "vmbus/channel/channel_client.h"
#include "vmbus/fuzz/fuzz_messages.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::channel;
using namespace hvkvm::vmbus::protocol;
using fuzz::check;

namespace {

struct CheckedTransport final : ClientTransport {
    void send(uint32_t connection_id, const MessageBuffer& message) override {
        check(connection_id != 0 && connection_id <= 0xffffff);
        GuestMessage parsed;
        check(parse_guest_message(message.bytes, message.size, parsed) == ParseError::kNone);
    }
};

// Remembers the last relid offered and the last GPADL created, so actions have targets.
struct Targets final : ClientEvents {
    void offer(const OfferChannel& offer) override { relid = offer.child_relid; }
    void gpadl_created(uint32_t id, uint32_t status) override {
        if (status == kStatusSuccess) gpadl = id;
    }
    uint32_t relid = 0;
    uint32_t gpadl = 0;
};

uint64_t g_ring_words[1 + 40];

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    CheckedTransport transport;
    Targets targets;
    ChannelClient client(transport, targets);
    const GpaRangeHeader header{40 * kHvPageSize, 0};
    __builtin_memcpy(g_ring_words, &header, sizeof(header));
    for (uint32_t i = 0; i < 40; ++i) g_ring_words[1 + i] = 0x1000 + i;
    check(client.connect() == ClientError::kNone);
    fuzz::for_each_entry(
        data, size,
        [&](const uint8_t* bytes, uint32_t length) { client.handle_message(bytes, length); },
        [&](uint32_t action) {
            uint32_t gpadl = 0;
            switch (action) {
                case 0: client.create_gpadl(targets.relid, GpaRangeList{g_ring_words, 41, 1}, gpadl); break;
                case 1: client.open(targets.relid, targets.gpadl, 20, 0); break;
                case 2: client.close(targets.relid); break;
                case 3: client.teardown_gpadl(targets.gpadl); break;
                case 4: client.release(targets.relid); break;
                case 5: client.unload(); break;
                default: client.connect(); break;
            }
        });
    check(client.channel_count() <= kClientMaxChannels);
    return 0;
}
