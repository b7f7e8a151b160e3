// Ring throughput: a producer thread and a consumer thread stream packets through one ring in this
// process, sleeping on eventfds exactly when the ring's signal decisions say (as a VSC and a VSP
// would), and the consumer copies every payload out. Prints messages/s for 64-byte and 4 KiB
// payloads, publishing and releasing per packet and in batches of 32, as the median and range of
// several runs (interleaved, so machine noise hits every configuration alike), with the signals each
// message cost, and the batched/unbatched ratio of the medians.
//
//   vmbus-ring-bench [RUNS]   (default 5)
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "vmbus/ring/ring_reader.h"
#include "vmbus/ring/ring_writer.h"

using namespace hvkvm::vmbus::ring;

namespace {

constexpr uint32_t kRingDataBytes = 256 * 1024;

class EventFd {
public:
    EventFd() : fd_(eventfd(0, EFD_CLOEXEC)) {
        if (fd_ < 0) {
            std::perror("eventfd");
            std::exit(1);
        }
    }
    ~EventFd() { close(fd_); }
    EventFd(const EventFd&) = delete;
    EventFd& operator=(const EventFd&) = delete;

    void signal() {
        const uint64_t one = 1;
        [[maybe_unused]] ssize_t written = write(fd_, &one, sizeof(one));
    }
    void wait() {
        uint64_t count;
        [[maybe_unused]] ssize_t got = read(fd_, &count, sizeof(count));
    }

private:
    int fd_;
};

struct Run {
    double messages_per_second;
    double signals_per_message;
};

struct Config {
    uint32_t payload_bytes;
    uint32_t batch;
    uint32_t messages;
};

Run run_once(const Config& config) {
    std::unique_ptr<uint8_t[]> storage(new (std::align_val_t{4096}) uint8_t[sizeof(ControlPage) + kRingDataBytes]());
    ContiguousRingMemory memory(reinterpret_cast<ControlPage*>(storage.get()), storage.get() + sizeof(ControlPage),
                                kRingDataBytes);
    RingWriter writer;
    RingReader reader;
    if (writer.attach(memory) != RingError::kOk || reader.attach(memory) != RingError::kOk) std::abort();
    EventFd data_ready, space_ready;

    const auto start = std::chrono::steady_clock::now();
    std::thread producer([&] {
        std::vector<uint8_t> payload(config.payload_bytes, 0x5a);
        for (uint32_t sent = 0; sent < config.messages;) {
            const RingError error = writer.write_inband(sent, payload.data(), config.payload_bytes);
            if (error == RingError::kOk) {
                ++sent;
                if (sent % config.batch == 0 && writer.publish()) data_ready.signal();
                continue;
            }
            if (error != RingError::kFull) std::abort();
            if (writer.publish()) data_ready.signal();
            if (writer.write_inband(sent, payload.data(), config.payload_bytes) == RingError::kOk) {
                ++sent;
                continue;
            }
            space_ready.wait();
        }
        if (writer.publish()) data_ready.signal();
    });

    std::vector<uint8_t> copy(config.payload_bytes);
    uint64_t checksum = 0;
    reader.mask_signals();
    for (uint32_t received = 0; received < config.messages;) {
        IncomingPacket packet;
        const RingError error = reader.next(packet);
        if (error == RingError::kOk) {
            reader.copy_payload(packet, 0, copy.data(), config.payload_bytes);
            checksum += copy[config.payload_bytes - 1] + packet.transaction_id;
            if (++received % config.batch == 0 && reader.release()) space_ready.signal();
            continue;
        }
        if (error != RingError::kEmpty) std::abort();
        if (reader.release()) space_ready.signal();
        if (reader.arm_signal()) continue;
        data_ready.wait();
        reader.mask_signals();
    }
    reader.release();
    producer.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const uint64_t expected = uint64_t{config.messages} * 0x5a + uint64_t{config.messages} * (config.messages - 1) / 2;
    if (checksum != expected) {
        std::fprintf(stderr, "checksum mismatch\n");
        std::exit(1);
    }
    const double signals = static_cast<double>(writer.counters().signals + reader.counters().signals);
    return Run{config.messages / seconds, signals / config.messages};
}

}  // namespace

int main(int argc, char** argv) {
    const int runs = argc > 1 ? std::atoi(argv[1]) : 5;
    if (runs < 1) {
        std::fprintf(stderr, "usage: %s [RUNS]\n", argv[0]);
        return 2;
    }
    const Config configs[] = {
        {64, 1, 2'000'000}, {64, 32, 4'000'000}, {4096, 1, 400'000}, {4096, 32, 400'000}};
    std::printf("vmbus ring: producer and consumer threads, %u KiB ring, eventfd wake-ups on the ring's "
                "signal decisions, %d runs each\n",
                kRingDataBytes / 1024, runs);
    std::printf("%-8s %-6s %-34s %-10s %s\n", "payload", "batch", "messages/s median [min - max]", "MiB/s", "signals/message");
    constexpr size_t kConfigs = sizeof(configs) / sizeof(configs[0]);
    std::vector<Run> results[kConfigs];
    for (int i = 0; i < runs; ++i) {
        for (size_t c = 0; c < kConfigs; ++c) results[c].push_back(run_once(configs[c]));
    }
    double medians[kConfigs];
    for (size_t c = 0; c < kConfigs; ++c) {
        std::vector<Run>& runs_of = results[c];
        std::sort(runs_of.begin(), runs_of.end(),
                  [](const Run& a, const Run& b) { return a.messages_per_second < b.messages_per_second; });
        const Run& median = runs_of[runs_of.size() / 2];
        medians[c] = median.messages_per_second;
        char range[64];
        std::snprintf(range, sizeof(range), "%.2fM [%.2fM - %.2fM]", median.messages_per_second / 1e6,
                      runs_of.front().messages_per_second / 1e6, runs_of.back().messages_per_second / 1e6);
        std::printf("%-8u %-6u %-34s %-10.0f %.4f\n", configs[c].payload_bytes, configs[c].batch, range,
                    median.messages_per_second * configs[c].payload_bytes / (1024.0 * 1024.0),
                    median.signals_per_message);
    }
    std::printf("batch 32 / batch 1 (medians): 64 B x%.2f, 4096 B x%.2f\n", medians[1] / medians[0],
                medians[3] / medians[2]);
    return 0;
}
