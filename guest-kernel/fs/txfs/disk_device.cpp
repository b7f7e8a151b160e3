#include "fs/txfs/disk_device.h"

#include "lib/string.h"
#include "mm/heap.h"

namespace hvkvm::guest::fs {
namespace {

void count(uint64_t& counter) { __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED); }
uint64_t load(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// Heap memory the block layer accepts for any buffer the core hands over; freed with the object.
class BounceBuffer {
public:
    explicit BounceBuffer(size_t bytes) : data_(mm::allocate(bytes, block::kSectorSize)) {}
    ~BounceBuffer() { mm::free(data_); }
    BounceBuffer(const BounceBuffer&) = delete;
    BounceBuffer& operator=(const BounceBuffer&) = delete;
    void* data() const { return data_; }

private:
    void* data_;
};

}  // namespace

DiskDevice::DiskDevice(block::Device& device)
    : device_(device), size_bytes_(block::info(device).sectors * block::kSectorSize) {}

bool DiskDevice::in_range(uint64_t offset, size_t length) const {
    return length != 0 && offset % block::kSectorSize == 0 && length % block::kSectorSize == 0 &&
           offset <= size_bytes_ && length <= size_bytes_ - offset && length / block::kSectorSize <= 0xffffffffu;
}

txfs::Status DiskDevice::result(block::IoStatus status, uint32_t device_error) {
    if (status == block::IoStatus::kOk) return txfs::Status::kOk;
    count(errors_);
    __atomic_store_n(&last_device_error_, device_error, __ATOMIC_RELAXED);
    return txfs::Status::kIoError;
}

txfs::Status DiskDevice::transfer(block::Operation operation, uint64_t offset, void* buffer, size_t length) {
    if (!in_range(offset, length)) return txfs::Status::kInvalidArgument;
    const uint64_t sector = offset / block::kSectorSize;
    const auto sectors = static_cast<uint32_t>(length / block::kSectorSize);
    uint32_t device_error = 0;
    const bool aligned = reinterpret_cast<uintptr_t>(buffer) % block::kSectorSize == 0;
    if (aligned) {
        const block::IoStatus status = operation == block::Operation::kRead
                                           ? block::read(device_, sector, sectors, buffer, &device_error)
                                           : block::write(device_, sector, sectors, buffer, &device_error);
        return result(status, device_error);
    }
    count(bounced_);
    BounceBuffer bounce(length);
    if (!bounce.data()) return txfs::Status::kNoMemory;
    if (operation == block::Operation::kWrite) {
        memcpy(bounce.data(), buffer, length);
        return result(block::write(device_, sector, sectors, bounce.data(), &device_error), device_error);
    }
    const txfs::Status status = result(block::read(device_, sector, sectors, bounce.data(), &device_error), device_error);
    if (status == txfs::Status::kOk) memcpy(buffer, bounce.data(), length);
    return status;
}

txfs::Status DiskDevice::read(uint64_t offset, void* buffer, size_t length) {
    count(reads_);
    return transfer(block::Operation::kRead, offset, buffer, length);
}

txfs::Status DiskDevice::write(uint64_t offset, const void* data, size_t length, txfs::WriteMode mode) {
    count(writes_);
    const txfs::Status status = transfer(block::Operation::kWrite, offset, const_cast<void*>(data), length);
    if (status != txfs::Status::kOk || mode != txfs::WriteMode::kFua) return status;
    count(fua_writes_);
    return flush();
}

txfs::Status DiskDevice::flush() {
    count(flushes_);
    uint32_t device_error = 0;
    return result(block::flush(device_, &device_error), device_error);
}

DiskDeviceStats DiskDevice::stats() const {
    return {load(reads_),   load(writes_), load(fua_writes_), load(flushes_),
            load(bounced_), load(errors_), __atomic_load_n(&last_device_error_, __ATOMIC_RELAXED)};
}

}  // namespace hvkvm::guest::fs
