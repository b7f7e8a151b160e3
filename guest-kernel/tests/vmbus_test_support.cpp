#include "tests/vmbus_test_support.h"

#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "tests/test_threads.h"
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

uint32_t wrap_around_round_trips(vmbus::echo::EchoDevice& echo, uint64_t& bytes) {
    uint32_t failures = 0;
    bytes = 0;
    for (uint32_t i = 0; i < 1500; ++i) {
        const uint32_t size = 1 + (i * 37) % 1900;
        const vmbus::echo::EchoResult result = echo_pattern(echo, size, i);
        if (result != vmbus::echo::EchoResult::kOk && failures++ == 0)
            kprint("    round trip %u (%u bytes): %s\n", i, size, vmbus::echo::echo_result_name(result));
        bytes += size;
    }
    return failures;
}

void run_round_trips(void* context, uint32_t) {
    auto& run = *static_cast<RoundTripRun*>(context);
    run.before = run.echo->channel()->stats();
    for (uint32_t i = 0; i < run.messages; ++i)
        if (echo_pattern(*run.echo, 64, i) != vmbus::echo::EchoResult::kOk) ++run.failures;
    run.after = run.echo->channel()->stats();
}

ring::RingError next_packet(vmbus::Channel& channel, ring::IncomingPacket& packet, uint64_t deadline_ns) {
    ring::RingError error;
    while ((error = channel.next(packet)) == ring::RingError::kEmpty)
        if (!channel.wait_for_packets(deadline_ns)) return channel.next(packet);
    return error;
}

namespace {

void armed_exchange(void* context, uint32_t index) {
    auto& exchange = *static_cast<ArmedExchange*>(context);
    vmbus::Channel& channel = *exchange.channel;
    static const uint8_t payload[64] = {1, 2, 3};
    if (index == 0) {  // the receiver
        for (uint32_t round = 0; round < exchange.rounds; ++round) {
            ring::IncomingPacket packet;
            const ring::RingError error = next_packet(channel, packet, in(5 * kSecond));
            if (error != ring::RingError::kOk || packet.transaction_id != round + 1) ++exchange.failures;
            channel.release();
            __atomic_store_n(&exchange.completed, round + 1, __ATOMIC_RELEASE);
            if (error != ring::RingError::kOk) return;
        }
        return;
    }
    for (uint32_t round = 0; round < exchange.rounds; ++round) {  // the sender
        const uint64_t deadline = in(5 * kSecond);
        // The receiver is asleep for this round (each round it sleeps once before its packet).
        while (channel.stats().waits_slept <= exchange.slept_before + round && time::now_ns() < deadline)
            sched::sleep_ns(50'000);
        if (channel.send_inband(round + 1, payload, sizeof payload, true, deadline) != ring::RingError::kOk) {
            ++exchange.failures;
            return;
        }
        while (__atomic_load_n(&exchange.completed, __ATOMIC_ACQUIRE) <= round && time::now_ns() < deadline)
            sched::sleep_ns(50'000);
    }
}

}  // namespace

bool run_armed_exchange(vmbus::Channel& channel, uint32_t rounds, ArmedExchange& exchange) {
    exchange = {&channel, rounds, channel.stats().waits_slept, 0, 0};
    return test::run_in_threads(2, test::Placement::kFree, armed_exchange, &exchange);
}


uint64_t idle_round_trips(vmbus::Channel& channel, uint32_t rounds, ArmedExchange& exchange) {
    const vmbus::ChannelStats before = channel.stats();
    if (!run_armed_exchange(channel, rounds, exchange)) return ~0ull;
    const vmbus::ChannelStats after = channel.stats();
    const uint64_t interrupts = after.interrupts - before.interrupts;
    kprint("    idle: %u round trips, %lu interrupts, %lu waits slept\n", rounds, interrupts,
           after.waits_slept - before.waits_slept);
    return interrupts;
}

}  // namespace hvkvm::guest::test
