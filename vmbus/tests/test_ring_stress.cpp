// Producer and consumer in two processes over a ring in a shared memfd, each mapping it at its own
// address, woken through eventfds exactly when the ring says to signal. The ring is small so that
// it wraps and fills constantly. A sleeper that times out while its condition already holds has
// lost a wake-up; the test asserts there are none, and that every packet arrives intact and in order.
#include <catch2/catch.hpp>
#include <cstring>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"

using namespace hvkvm::vmbus::ring;

namespace {

constexpr uint32_t kDataPages = 4;
constexpr uint32_t kPackets = 300000;
constexpr int kWakeupTimeoutMs = 5000;  // far beyond any scheduling delay: a timeout means a lost signal

// Shared with the child after the ring pages.
struct StressStats {
    uint64_t producer_full;
    uint64_t producer_sleeps;
    uint64_t producer_lost_wakeups;
    uint64_t producer_signals_sent;
    int32_t producer_error;  // a RingError from the producer, or 0
};

class Fd {
public:
    explicit Fd(int fd) : fd_(fd) { REQUIRE(fd_ >= 0); }
    ~Fd() { close(fd_); }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

class SharedMapping {
public:
    SharedMapping(int fd, size_t bytes) : bytes_(bytes) {
        address_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (address_ == MAP_FAILED) address_ = nullptr;
    }
    ~SharedMapping() {
        if (address_ != nullptr) munmap(address_, bytes_);
    }
    SharedMapping(const SharedMapping&) = delete;
    SharedMapping& operator=(const SharedMapping&) = delete;
    uint8_t* bytes() const { return static_cast<uint8_t*>(address_); }

private:
    void* address_;
    size_t bytes_;
};

constexpr size_t kRingBytes = (1 + kDataPages) * 4096;
constexpr size_t kSharedBytes = kRingBytes + 4096;

uint32_t payload_size_of(uint32_t sequence) { return 8 + (sequence * 2654435761u) % 1500; }
uint8_t payload_byte(uint32_t sequence, uint32_t index) { return static_cast<uint8_t>(sequence ^ (index * 31)); }

void signal(int event_fd) {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = write(event_fd, &one, sizeof(one));
}

// Waits for an eventfd; false on timeout.
bool wait_for(int event_fd) {
    pollfd descriptor{event_fd, POLLIN, 0};
    if (poll(&descriptor, 1, kWakeupTimeoutMs) <= 0) return false;
    uint64_t count;
    [[maybe_unused]] ssize_t got = read(event_fd, &count, sizeof(count));
    return true;
}

// Child process: never returns into Catch2.
[[noreturn]] void run_producer(int memfd, int data_ready, int space_ready) {
    SharedMapping shared(memfd, kSharedBytes);
    if (shared.bytes() == nullptr) _exit(3);
    auto* stats = reinterpret_cast<StressStats*>(shared.bytes() + kRingBytes);
    ContiguousRingMemory memory(reinterpret_cast<ControlPage*>(shared.bytes()), shared.bytes() + 4096, kDataPages * 4096);
    RingWriter writer;
    if (writer.attach(memory) != RingError::kOk) _exit(4);
    std::vector<uint8_t> payload(2048);
    uint32_t batch = 0;
    for (uint32_t sequence = 0; sequence < kPackets;) {
        const uint32_t size = payload_size_of(sequence);
        std::memcpy(payload.data(), &sequence, 4);
        for (uint32_t i = 4; i < size; ++i) payload[i] = payload_byte(sequence, i);
        const RingError error = writer.write_inband(sequence, payload.data(), size);
        if (error == RingError::kOk) {
            ++sequence;
            if (++batch >= 1 + sequence % 5) {
                batch = 0;
                if (writer.publish()) ++stats->producer_signals_sent, signal(data_ready);
            }
            continue;
        }
        if (error != RingError::kFull) {
            stats->producer_error = static_cast<int32_t>(error);
            _exit(5);
        }
        // Publish what the batch holds (the reader cannot free unseen space), then sleep until the
        // reader says the pending size is crossed.
        if (writer.publish()) ++stats->producer_signals_sent, signal(data_ready);
        if (writer.write_inband(sequence, payload.data(), size) == RingError::kOk) {
            ++sequence;
            continue;
        }
        ++stats->producer_sleeps;
        if (!wait_for(space_ready)) {
            // Timed out: if the packet fits now, the reader freed the space without signalling.
            if (writer.write_inband(sequence, payload.data(), size) == RingError::kOk) {
                ++stats->producer_lost_wakeups;
                ++sequence;
            }
        }
    }
    if (writer.publish()) signal(data_ready);
    stats->producer_full = writer.counters().full;
    _exit(0);
}

}  // namespace

TEST_CASE("ring: two processes stream 300k packets through a 16 KiB ring without losing a wake-up",
          "[vmbus][ring][stress]") {
    Fd memfd(memfd_create("vmbus-ring-stress", MFD_CLOEXEC));
    REQUIRE(ftruncate(memfd.get(), kSharedBytes) == 0);
    Fd data_ready(eventfd(0, EFD_CLOEXEC));
    Fd space_ready(eventfd(0, EFD_CLOEXEC));
    SharedMapping shared(memfd.get(), kSharedBytes);
    REQUIRE(shared.bytes() != nullptr);
    auto* stats = reinterpret_cast<StressStats*>(shared.bytes() + kRingBytes);
    ContiguousRingMemory memory(reinterpret_cast<ControlPage*>(shared.bytes()), shared.bytes() + 4096, kDataPages * 4096);
    RingReader reader;
    REQUIRE(reader.attach(memory) == RingError::kOk);

    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) run_producer(memfd.get(), data_ready.get(), space_ready.get());

    uint32_t expected = 0;
    uint64_t consumer_sleeps = 0, consumer_lost_wakeups = 0, mismatches = 0, signals_sent = 0;
    RingError failure = RingError::kOk;
    std::vector<uint8_t> payload(2048);
    reader.mask_signals();
    while (expected < kPackets && failure == RingError::kOk) {
        IncomingPacket packet;
        const RingError error = reader.next(packet);
        if (error == RingError::kOk) {
            const uint32_t size = payload_size_of(expected);
            if (packet.transaction_id != expected || packet.payload_size != align_to_packet(size)) {
                ++mismatches;
            } else {
                reader.copy_payload(packet, 0, payload.data(), size);
                uint32_t sequence;
                std::memcpy(&sequence, payload.data(), 4);
                bool intact = sequence == expected;
                for (uint32_t i = 4; i < size && intact; ++i) intact = payload[i] == payload_byte(expected, i);
                if (!intact) ++mismatches;
            }
            ++expected;
            if (expected % 3 == 0 && reader.release()) ++signals_sent, signal(space_ready.get());
            continue;
        }
        if (error != RingError::kEmpty) {
            failure = error;
            break;
        }
        if (reader.release()) ++signals_sent, signal(space_ready.get());
        if (reader.arm_signal()) continue;  // a packet slipped in
        ++consumer_sleeps;
        const bool woken = wait_for(data_ready.get());
        reader.mask_signals();
        if (!woken && reader.next(packet) != RingError::kEmpty) {
            ++consumer_lost_wakeups;
            reader.rewind();
        }
    }
    reader.release();
    signal(space_ready.get());

    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(stats->producer_error == 0);
    CHECK(ring_error_name(failure) == std::string("ok"));
    CHECK(expected == kPackets);
    CHECK(mismatches == 0);
    CHECK(consumer_lost_wakeups == 0);
    CHECK(stats->producer_lost_wakeups == 0);
    // Both sleep paths and both signals were exercised, or the test proved nothing.
    CHECK(stats->producer_full > 0);
    CHECK(stats->producer_sleeps > 0);
    CHECK(signals_sent > 0);
    CHECK(stats->producer_signals_sent > 0);
    INFO("producer full " << stats->producer_full << ", producer sleeps " << stats->producer_sleeps
                          << ", consumer sleeps " << consumer_sleeps);
    CHECK(consumer_sleeps > 0);
}
