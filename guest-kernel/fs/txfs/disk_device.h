// txfs's BlockDevice on a guest block-layer device (block/block.h): synchronous reads, writes and
// flushes through the block layer's helpers, errors reported as kIoError.
//
// The block layer has no Force Unit Access write, so a kFua write is a write followed by a flush:
// stronger than FUA (it also makes earlier writes durable) and exactly as durable as the core
// needs. Buffers the block layer would refuse (not 512-byte aligned) go through an aligned bounce
// buffer; the core's own buffers never need one, and the count says so.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "block/block.h"
#include "core/interfaces.h"

namespace hvkvm::guest::fs {

struct DiskDeviceStats {
    uint64_t reads;
    uint64_t writes;
    uint64_t fua_writes;   // each also counted in writes and flushes
    uint64_t flushes;
    uint64_t bounced;      // transfers copied through an aligned buffer
    uint64_t errors;       // transfers the block layer failed
    uint32_t last_device_error;  // the driver's detail of the latest failure
};

class DiskDevice final : public txfs::BlockDevice {
public:
    explicit DiskDevice(block::Device& device);

    uint32_t sector_size() const override { return block::kSectorSize; }
    uint64_t size_bytes() const override { return size_bytes_; }
    txfs::Status read(uint64_t offset, void* buffer, size_t length) override;
    txfs::Status write(uint64_t offset, const void* data, size_t length, txfs::WriteMode mode) override;
    txfs::Status flush() override;

    block::Device& device() const { return device_; }
    DiskDeviceStats stats() const;

private:
    bool in_range(uint64_t offset, size_t length) const;
    txfs::Status transfer(block::Operation operation, uint64_t offset, void* buffer, size_t length);
    txfs::Status result(block::IoStatus status, uint32_t device_error);

    block::Device& device_;
    const uint64_t size_bytes_;
    // Counters, updated atomically (several threads use one volume).
    uint64_t reads_ = 0, writes_ = 0, fua_writes_ = 0, flushes_ = 0, bounced_ = 0, errors_ = 0;
    uint32_t last_device_error_ = 0;
};

}  // namespace hvkvm::guest::fs
