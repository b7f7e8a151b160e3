// Block devices for the host: a file (the tools, the benchmark) and plain memory (tests). Both
// count flushes so tests and the benchmark can report flushes per transaction.
#pragma once

#include <atomic>
#include <memory>
#include <cstdint>
#include <string>
#include <vector>

#include "core/interfaces.h"

namespace txfs::host {

class FileDevice final : public BlockDevice {
public:
    // Opens an existing image (read-write unless read_only). Returns nullptr and sets *error.
    static std::unique_ptr<FileDevice> open(const std::string& path, bool read_only, std::string* error);
    // Creates (or truncates) an image of `bytes`.
    static std::unique_ptr<FileDevice> create(const std::string& path, uint64_t bytes, std::string* error);
    ~FileDevice() override;
    FileDevice(const FileDevice&) = delete;
    FileDevice& operator=(const FileDevice&) = delete;

    uint32_t sector_size() const override { return 512; }
    uint64_t size_bytes() const override { return size_; }
    Status read(uint64_t offset, void* buffer, size_t length) override;
    Status write(uint64_t offset, const void* data, size_t length, WriteMode mode) override;
    Status flush() override;
    uint64_t flushes() const { return flushes_.load(); }

private:
    FileDevice(int fd, uint64_t size, bool read_only) : fd_(fd), size_(size), read_only_(read_only) {}
    bool in_range(uint64_t offset, size_t length) const;

    int fd_;
    uint64_t size_;
    bool read_only_;
    std::atomic<uint64_t> flushes_{0};
};

class MemoryDevice final : public BlockDevice {
public:
    explicit MemoryDevice(uint64_t bytes, uint32_t sector = 512) : bytes_(bytes, 0), sector_(sector) {}
    uint32_t sector_size() const override { return sector_; }
    uint64_t size_bytes() const override { return bytes_.size(); }
    Status read(uint64_t offset, void* buffer, size_t length) override;
    Status write(uint64_t offset, const void* data, size_t length, WriteMode mode) override;
    Status flush() override;
    uint64_t flushes() const { return flushes_.load(); }
    std::vector<uint8_t>& bytes() { return bytes_; }
    // Makes every later write or flush fail (I/O error injection).
    void fail_from_now(bool fail) { failing_ = fail; }
    // Each flush takes this long, like a real disk's cache flush (for group-commit tests).
    void set_flush_delay_us(uint32_t microseconds) { flush_delay_us_ = microseconds; }

private:
    std::vector<uint8_t> bytes_;
    uint32_t sector_;
    std::atomic<uint64_t> flushes_{0};
    std::atomic<bool> failing_{false};
    std::atomic<uint32_t> flush_delay_us_{0};
};

}  // namespace txfs::host
