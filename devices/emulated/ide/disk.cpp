#include "disk.h"

#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>

namespace hvkvm::devices::ide {
namespace {

constexpr uint64_t kSectorSize = vmm::DiskImage::kSectorSize;

// The image's size was checked when it was opened, so a short transfer means the file changed
// under the VM (truncated by someone else): an I/O error like any other.
template <typename Transfer>
int transfer_all(Transfer transfer, uint64_t offset, uint64_t length) {
    uint64_t done = 0;
    while (done < length) {
        const ssize_t n = transfer(offset + done, done, length - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;
        done += static_cast<uint64_t>(n);
    }
    return 0;
}

}  // namespace

int FileDisk::read(uint64_t sector, std::span<std::byte> buffer) {
    const int fd = image_.fd.get();
    return transfer_all(
        [&](uint64_t offset, uint64_t done, uint64_t left) {
            return ::pread(fd, buffer.data() + done, left, static_cast<off_t>(offset));
        },
        sector * kSectorSize, buffer.size());
}

int FileDisk::write(uint64_t sector, std::span<const std::byte> buffer, WriteMode mode) {
    const int fd = image_.fd.get();
    const int flags = mode == WriteMode::kWriteThrough ? RWF_DSYNC : 0;
    return transfer_all(
        [&](uint64_t offset, uint64_t done, uint64_t left) {
            iovec vector{const_cast<std::byte*>(buffer.data() + done), left};
            return ::pwritev2(fd, &vector, 1, static_cast<off_t>(offset), flags);
        },
        sector * kSectorSize, buffer.size());
}

int FileDisk::flush() {
    while (::fdatasync(image_.fd.get()) < 0)
        if (errno != EINTR) return errno;
    return 0;
}

}  // namespace hvkvm::devices::ide
