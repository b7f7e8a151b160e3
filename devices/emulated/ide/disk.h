// A disk as the IDE controller's worker thread uses it: whole sectors at a sector address, a
// flush, and what IDENTIFY reports. The controller checks every address against sectors() before
// it calls read or write. FileDisk is the real one (an opened, locked DiskImage); the unit tests
// use an in-memory disk with injected errors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "storage/disk_image.h"

namespace hvkvm::devices::ide {

enum class WriteMode { kCached, kWriteThrough };  // write-through: durable when write() returns

class Disk {
public:
    virtual ~Disk() = default;
    virtual const std::string& id() const = 0;
    virtual uint64_t sectors() const = 0;
    virtual bool read_only() const = 0;
    // 0, or the errno of the host's failure. `buffer` is a whole number of sectors, and for a disk
    // opened with cache "none" 4096-byte aligned (the controller's buffers are).
    virtual int read(uint64_t sector, std::span<std::byte> buffer) = 0;
    virtual int write(uint64_t sector, std::span<const std::byte> buffer, WriteMode mode) = 0;
    virtual int flush() = 0;
};

class FileDisk final : public Disk {
public:
    explicit FileDisk(vmm::DiskImage image) : image_(std::move(image)) {}
    const std::string& id() const override { return image_.config.id; }
    uint64_t sectors() const override { return image_.sectors(); }
    bool read_only() const override { return image_.config.read_only; }
    int read(uint64_t sector, std::span<std::byte> buffer) override;
    int write(uint64_t sector, std::span<const std::byte> buffer, WriteMode mode) override;
    int flush() override;

private:
    vmm::DiskImage image_;
};

}  // namespace hvkvm::devices::ide
