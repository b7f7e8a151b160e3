// Crash simulation (the CrashMonkey approach). RecordingDevice is an in-memory disk that keeps
// every write in the order issued, grouped into epochs separated by flushes. After a workload,
// enumerate_crash_states() produces the disk images a power cut could have left:
//   - every flush prefix: all epochs before e durable, nothing of epoch e
//   - plus subsets of epoch e's writes (exhaustively when the epoch is small, else prefixes,
//     single omissions, singles and random subsets)
//   - plus torn writes: one write of the epoch with only some of its sectors persisted
// A FUA write is durable when it completes: a state that keeps a later write of the same epoch
// keeps every earlier FUA write too.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "core/interfaces.h"

namespace txfs::host {

struct RecordedWrite {
    uint64_t offset;
    std::vector<uint8_t> data;
    bool fua;
};

class RecordingDevice final : public BlockDevice {
public:
    explicit RecordingDevice(std::vector<uint8_t> base, uint32_t sector = 512);

    uint32_t sector_size() const override { return sector_; }
    uint64_t size_bytes() const override { return live_.size(); }
    Status read(uint64_t offset, void* buffer, size_t length) override;
    Status write(uint64_t offset, const void* data, size_t length, WriteMode mode) override;
    Status flush() override;

    // epochs()[e] holds the writes issued after the e-th flush and before the next one.
    const std::vector<std::vector<RecordedWrite>>& epochs() const { return epochs_; }
    uint64_t flush_count() const;
    std::vector<uint8_t> contents() const;  // what a reader sees now (every write applied)
    const std::vector<uint8_t>& base() const { return base_; }

private:
    std::vector<uint8_t> base_;
    uint32_t sector_;
    mutable std::mutex lock_;
    std::vector<uint8_t> live_;                          // guarded by lock_
    std::vector<std::vector<RecordedWrite>> epochs_;     // guarded by lock_
};

struct CrashStateOptions {
    size_t exhaustive_limit = 8;  // epochs with at most this many writes: every subset
    size_t random_subsets = 8;    // larger epochs: this many random subsets besides the fixed ones
    bool torn_writes = true;
    uint64_t seed = 1;
};

// visit(image, epoch, description) is called per state; return false to stop. Returns the number
// of states visited.
using CrashStateVisitor = std::function<bool(const std::vector<uint8_t>& image, size_t epoch, const std::string& what)>;
uint64_t enumerate_crash_states(const RecordingDevice& device, const CrashStateOptions& options, const CrashStateVisitor& visit);

// One state chosen at random (for long random workloads): a random epoch, subset and tearing.
void random_crash_state(const RecordingDevice& device, std::mt19937_64& random, std::vector<uint8_t>& image,
                        size_t* epoch, std::string* what);

}  // namespace txfs::host
