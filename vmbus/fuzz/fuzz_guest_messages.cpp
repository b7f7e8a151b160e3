// libFuzzer target: the host's side of the channel protocol facing a hostile guest. Each message
// goes through parse_guest_message() and a ChannelServer with three devices; actions rescind
// offers and add new ones. Checked: every reply the server sends parses as a host message, GPADL
// storage stays bounded and is all returned, and each device is closed once per successful open.
#include <cstdint>
#include <cstdlib>
#include <map>

#include "vmbus/channel/channel_server.h"
#include "vmbus/fuzz/fuzz_messages.h"

using namespace hvkvm::vmbus;
using namespace hvkvm::vmbus::channel;
using namespace hvkvm::vmbus::protocol;
using fuzz::check;

namespace {

struct CheckedTransport final : ServerTransport {
    void send(const MessageBuffer& message) override {
        HostMessage parsed;
        check(parse_host_message(message.bytes, message.size, parsed) == ParseError::kNone);
    }
};

struct BoundedStorage final : GpadlStorage {
    static constexpr uint32_t kLimitWords = 4 * kGpadlMaxWords;
    uint64_t* allocate(uint32_t words) override {
        check(words >= 2 && words <= kGpadlMaxWords);
        if (outstanding_words + words > kLimitWords) return nullptr;
        outstanding_words += words;
        auto* block = static_cast<uint64_t*>(std::malloc(words * sizeof(uint64_t)));
        sizes[block] = words;
        return block;
    }
    void release(uint64_t* words, uint32_t count) override {
        auto found = sizes.find(words);
        check(found != sizes.end() && found->second == count);
        outstanding_words -= count;
        sizes.erase(found);
        std::free(words);
    }
    uint32_t outstanding_words = 0;
    std::map<uint64_t*, uint32_t> sizes;
};

struct CountingDevice final : ChannelDevice {
    uint32_t open(const OpenRequest& request) override {
        check(request.ring.page_count >= 4 && request.ring.downstream_page_offset >= 2 &&
              request.ring.page_count - request.ring.downstream_page_offset >= 2);
        check(!is_open);
        is_open = (request.open_id & 1) == 0;  // refuse odd open ids
        return is_open ? kStatusSuccess : kStatusUnsuccessful;
    }
    void close() override {
        check(is_open);
        is_open = false;
    }
    bool is_open = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    CheckedTransport transport;
    BoundedStorage storage;
    CountingDevice devices[4];
    {
        ChannelServer server(transport, storage);
        OfferId ids[4] = {};
        for (uint32_t i = 0; i < 3; ++i) {
            OfferInfo info;
            info.interface_instance.data1 = i;
            check(server.add_offer(info, devices[i], ids[i]) == ServerError::kNone);
        }
        fuzz::for_each_entry(
            data, size,
            [&](const uint8_t* bytes, uint32_t length) {
                const ServerError error = server.handle_message(bytes, length);
                check(error == ServerError::kParse || server.last_parse_error() == ParseError::kNone);
            },
            [&](uint32_t action) {
                if (action < 3) {
                    server.rescind(ids[action]);
                } else if (action == 3) {
                    OfferInfo info;
                    server.add_offer(info, devices[3], ids[3]);
                }
            });
        for (const CountingDevice& device : devices) check(!device.is_open || server.is_connected());
    }
    check(storage.outstanding_words == 0);
    return 0;
}
