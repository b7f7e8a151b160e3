#include "tests/vmbus_test_support.h"

#include "mm/page_allocator.h"
#include "vmbus/services/echo.h"

namespace hvkvm::guest::test {

namespace protocol = ::hvkvm::vmbus::protocol;
namespace ring = ::hvkvm::vmbus::ring;

void fill_pattern(uint8_t* bytes, uint32_t size, uint32_t seed) {
    for (uint32_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed * 31 + i * 7 + (i >> 8));
}

vmbus::echo::EchoResult echo_pattern(vmbus::echo::EchoDevice& echo, uint32_t size, uint32_t seed) {
    static uint8_t bytes[::hvkvm::vmbus::services::echo::kMaxPayload];  // tests run one at a time
    fill_pattern(bytes, size, seed);
    return echo.round_trip(bytes, size, in(5 * kSecond));
}

uint32_t gpadl_messages(uint32_t pages) {
    const uint32_t words = pages + 1;
    if (words <= protocol::kGpadlHeaderMaxWords) return 1;
    const uint32_t body_words = words - protocol::kGpadlHeaderMaxWords;
    return 1 + (body_words + protocol::kGpadlBodyMaxWords - 1) / protocol::kGpadlBodyMaxWords;
}

namespace {
uint64_t pfn_storage[8 * 1024];  // one GpadlPages at a time (tests run one at a time)
}  // namespace

GpadlPages::GpadlPages() : pfns_(pfn_storage) {
    static_assert(kBlockPages == 1u << mm::kMaxOrder);
    static_assert(kBlocks * kBlockPages >= kLargest + 1);
    static_assert(sizeof pfn_storage / sizeof pfn_storage[0] == kBlocks * kBlockPages);
    for (uint32_t block = 0; block < kBlocks; ++block) {
        blocks_[block] = mm::allocate_pages(mm::kMaxOrder);
        allocated_ &= blocks_[block] != 0;
        for (uint32_t page = 0; page < kBlockPages; ++page)
            pfns_[block * kBlockPages + page] = blocks_[block] / vmbus::kHvPageSize + page;
    }
}

GpadlPages::~GpadlPages() {
    for (uint64_t block : blocks_)
        if (block) mm::free_pages(block, mm::kMaxOrder);
}

ring::RingError next_packet(vmbus::Channel& channel, ring::IncomingPacket& packet, uint64_t deadline_ns) {
    ring::RingError error;
    while ((error = channel.next(packet)) == ring::RingError::kEmpty)
        if (!channel.wait_for_packets(deadline_ns)) return channel.next(packet);
    return error;
}

}  // namespace hvkvm::guest::test
