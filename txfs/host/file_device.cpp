#include "host/file_device.h"

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace txfs::host {

std::unique_ptr<FileDevice> FileDevice::open(const std::string& path, bool read_only, std::string* error) {
    const int fd = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
    if (fd < 0) {
        *error = path + ": " + std::strerror(errno);
        return nullptr;
    }
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        *error = path + ": not a regular file";
        ::close(fd);
        return nullptr;
    }
    return std::unique_ptr<FileDevice>(new FileDevice(fd, static_cast<uint64_t>(info.st_size) / 512 * 512, read_only));
}

std::unique_ptr<FileDevice> FileDevice::create(const std::string& path, uint64_t bytes, std::string* error) {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
        *error = path + ": " + std::strerror(errno);
        if (fd >= 0) ::close(fd);
        return nullptr;
    }
    return std::unique_ptr<FileDevice>(new FileDevice(fd, bytes, false));
}

FileDevice::~FileDevice() { ::close(fd_); }

bool FileDevice::in_range(uint64_t offset, size_t length) const {
    return offset % 512 == 0 && length % 512 == 0 && offset <= size_ && length <= size_ - offset;
}

Status FileDevice::read(uint64_t offset, void* buffer, size_t length) {
    if (!in_range(offset, length)) return Status::kInvalidArgument;
    auto* out = static_cast<uint8_t*>(buffer);
    while (length > 0) {
        const ssize_t done = ::pread(fd_, out, length, static_cast<off_t>(offset));
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) return Status::kIoError;
        out += done;
        offset += static_cast<uint64_t>(done);
        length -= static_cast<size_t>(done);
    }
    return Status::kOk;
}

Status FileDevice::write(uint64_t offset, const void* data, size_t length, WriteMode mode) {
    if (read_only_) return Status::kReadOnly;
    if (!in_range(offset, length)) return Status::kInvalidArgument;
    // FUA: RWF_DSYNC makes this one write durable before it returns, like a FUA command.
    const int flags = mode == WriteMode::kFua ? RWF_DSYNC : 0;
    const auto* in = static_cast<const uint8_t*>(data);
    while (length > 0) {
        iovec vector{const_cast<uint8_t*>(in), length};
        const ssize_t done = ::pwritev2(fd_, &vector, 1, static_cast<off_t>(offset), flags);
        if (done < 0 && errno == EINTR) continue;
        if (done <= 0) return Status::kIoError;
        in += done;
        offset += static_cast<uint64_t>(done);
        length -= static_cast<size_t>(done);
    }
    return Status::kOk;
}

Status FileDevice::flush() {
    if (read_only_) return Status::kOk;
    ++flushes_;
    return ::fdatasync(fd_) == 0 ? Status::kOk : Status::kIoError;
}

Status MemoryDevice::read(uint64_t offset, void* buffer, size_t length) {
    if (offset % sector_ || length % sector_ || offset > bytes_.size() || length > bytes_.size() - offset)
        return Status::kInvalidArgument;
    std::memcpy(buffer, bytes_.data() + offset, length);
    return Status::kOk;
}

Status MemoryDevice::write(uint64_t offset, const void* data, size_t length, WriteMode) {
    if (failing_) return Status::kIoError;
    if (offset % sector_ || length % sector_ || offset > bytes_.size() || length > bytes_.size() - offset)
        return Status::kInvalidArgument;
    std::memcpy(bytes_.data() + offset, data, length);
    return Status::kOk;
}

Status MemoryDevice::flush() {
    if (failing_) return Status::kIoError;
    if (flush_delay_us_) std::this_thread::sleep_for(std::chrono::microseconds(flush_delay_us_.load()));
    ++flushes_;
    return Status::kOk;
}

}  // namespace txfs::host
