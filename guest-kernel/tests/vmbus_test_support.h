// What the VMBus test suites share: deadlines, payload patterns and echo round trips, the number
// of messages a GPADL takes, pages for GPADLs up to the size limit, and waiting for a packet.
#pragma once

#include <stdint.h>

#include "arch/x86_64/time.h"
#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/echo_vsc.h"

namespace hvkvm::guest::test {

inline constexpr uint64_t kSecond = 1'000'000'000;
inline uint64_t in(uint64_t ns) { return time::now_ns() + ns; }

void fill_pattern(uint8_t* bytes, uint32_t size, uint32_t seed);
// A round trip of `size` pattern bytes, with a 5 s limit.
vmbus::echo::EchoResult echo_pattern(vmbus::echo::EchoDevice& echo, uint32_t size, uint32_t seed);

// HvPostMessages a GPADL of `pages` pages takes: a header with 27 words (the range header and 26
// PFNs), then bodies of 28 words.
uint32_t gpadl_messages(uint32_t pages);

// The largest GPADL range_buflen can announce (8190 pages), and a page more: real pages from the
// allocator's largest blocks (a GPADL lists any pages, in any order). Freed on destruction.
class GpadlPages {
public:
    static constexpr uint32_t kLargest = ::hvkvm::vmbus::protocol::kGpadlMaxWords - 1;

    GpadlPages();
    ~GpadlPages();
    GpadlPages(const GpadlPages&) = delete;
    GpadlPages& operator=(const GpadlPages&) = delete;

    bool allocated() const { return allocated_; }
    const uint64_t* pfns() const { return pfns_; }

private:
    static constexpr uint32_t kBlocks = 8;
    static constexpr uint32_t kBlockPages = 1024;  // 2^mm::kMaxOrder (checked in the .cpp)

    uint64_t blocks_[kBlocks] = {};
    uint64_t* pfns_;  // kBlocks * kBlockPages entries
    bool allocated_ = true;
};

// 1500 round trips of odd sizes (1..1900 bytes: every alignment of the wrap) through whatever
// rings the device has open. Returns how many failed (the first is printed); `bytes` says how much
// went through.
uint32_t wrap_around_round_trips(vmbus::echo::EchoDevice& echo, uint64_t& bytes);

// Queue-depth-1 round trips of 64 bytes, and what the channel counted meanwhile (for
// run_in_threads: the body runs in a thread placed as the test asks).
struct RoundTripRun {
    vmbus::echo::EchoDevice* echo;
    uint32_t messages;
    uint32_t failures;
    vmbus::ChannelStats before, after;
};
void run_round_trips(void* run, uint32_t thread_index);

// Requests answered to a reader that is already asleep: one thread re-enables the channel's
// interrupt and sleeps (nothing is in flight, so it does not poll) before the other sends, so each
// completion must interrupt it. What an idle channel costs. False if the threads did not start.
struct ArmedExchange {
    vmbus::Channel* channel;
    uint32_t rounds;
    uint64_t slept_before;  // the channel's waits_slept before the first round
    uint32_t completed;
    uint32_t failures;
};
bool run_armed_exchange(vmbus::Channel& channel, uint32_t rounds, ArmedExchange& exchange);
// `rounds` armed exchanges; prints and returns the channel interrupts they took (~0 if the
// threads did not start).
uint64_t idle_round_trips(vmbus::Channel& channel, uint32_t rounds, ArmedExchange& exchange);

// The channel's next packet, waiting for one until the deadline: kOk, kEmpty (nothing came) or
// the ring's error.
::hvkvm::vmbus::ring::RingError next_packet(vmbus::Channel& channel, ::hvkvm::vmbus::ring::IncomingPacket& packet,
                                            uint64_t deadline_ns);

}  // namespace hvkvm::guest::test
