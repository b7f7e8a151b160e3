// Scratch disk images and host capability checks for the storage tests.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <liburing.h>

namespace hvkvm::storage::testing {

// A zero-filled image file of `bytes` in a fresh temporary directory, removed afterwards.
class ScratchImage {
public:
    explicit ScratchImage(uint64_t bytes) {
        std::string pattern = (std::filesystem::temp_directory_path() / "hvkvm-storage-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
        directory_ = pattern;
        path_ = directory_ / "disk.img";
        const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) < 0) throw std::runtime_error("cannot create a scratch image");
        ::close(fd);
    }
    ~ScratchImage() {
        for (int fd : fds_) ::close(fd);
        std::error_code ignored;
        std::filesystem::remove_all(directory_, ignored);
    }
    ScratchImage(const ScratchImage&) = delete;
    ScratchImage& operator=(const ScratchImage&) = delete;

    const std::filesystem::path& path() const { return path_; }
    const std::filesystem::path& directory() const { return directory_; }

    // A descriptor owned by the image. O_DIRECT when asked and the file system supports it.
    int open(bool direct) {
        int fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC | (direct ? O_DIRECT : 0));
        if (fd < 0 && direct && errno == EINVAL) fd = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("cannot open the scratch image");
        fds_.push_back(fd);
        return fd;
    }
    std::vector<uint8_t> read(uint64_t offset, size_t bytes) const {
        std::vector<uint8_t> data(bytes);
        const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        const ssize_t got = ::pread(fd, data.data(), bytes, static_cast<off_t>(offset));
        ::close(fd);
        if (got != static_cast<ssize_t>(bytes)) throw std::runtime_error("short read of the scratch image");
        return data;
    }
    void write(uint64_t offset, const std::vector<uint8_t>& data) const {
        const int fd = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
        const ssize_t put = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
        ::close(fd);
        if (put != static_cast<ssize_t>(data.size())) throw std::runtime_error("short write of the scratch image");
    }
    uint64_t size() const { return std::filesystem::file_size(path_); }

private:
    std::filesystem::path directory_, path_;
    std::vector<int> fds_;
};

// Why io_uring cannot be used here (nullptr: it can). Tests that need it skip with this reason.
inline const char* io_uring_unavailable() {
    static std::string reason = [] {
        io_uring ring;
        const int result = io_uring_queue_init(2, &ring, 0);
        if (result < 0) return "io_uring_setup fails on this host (" + std::string(std::strerror(-result)) + ")";
        io_uring_queue_exit(&ring);
        return std::string();
    }();
    return reason.empty() ? nullptr : reason.c_str();
}

}  // namespace hvkvm::storage::testing

// Ends a test case that needs io_uring, reporting it skipped with the reason (Catch2 v2 has no
// SKIP; ctest's SKIP_REGULAR_EXPRESSION matches "SKIPPED:").
#define SKIP_WITHOUT_IO_URING()                                                  \
    do {                                                                         \
        if (const char* reason = hvkvm::storage::testing::io_uring_unavailable()) { \
            WARN("SKIPPED: " << reason);                                         \
            return;                                                              \
        }                                                                        \
    } while (false)
