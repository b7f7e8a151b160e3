#include "storage/disk_image.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <filesystem>
#include <thread>

namespace hvkvm::vmm {
namespace {

uint64_t size_of(int fd, const struct stat& status) {
    if (S_ISREG(status.st_mode)) return static_cast<uint64_t>(status.st_size);
    uint64_t bytes = 0;
    if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0) return 0;
    return bytes;
}

// An exclusive (or, read-only, shared) lock on the whole image, per open file: a second disk of
// this VM on the same image conflicts as another process would.
bool lock_image(int fd, bool read_only) {
    struct flock lock {};
    lock.l_type = read_only ? F_RDLCK : F_WRLCK;
    lock.l_whence = SEEK_SET;
    return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

}  // namespace

DiskImage open_disk_image(const DiskConfig& disk, const std::string& key_path) {
    const std::string path_key = key_path + ".path";
    int flags = (disk.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (disk.cache == DiskCache::kNone) flags |= O_DIRECT;
    UniqueFd fd(::open(disk.path.c_str(), flags));
    if (!fd.valid() && errno == EINVAL && disk.cache == DiskCache::kNone)
        throw ConfigError(path_key, fmt::format("{}: the file system does not support O_DIRECT (set {}.cache to \"writeback\")",
                                                disk.path.string(), key_path));
    if (!fd.valid()) throw ConfigError(path_key, fmt::format("cannot open {}: {}", disk.path.string(), std::strerror(errno)));
    struct stat status {};
    if (::fstat(fd.get(), &status) < 0) throw ConfigError(path_key, fmt::format("cannot stat {}: {}", disk.path.string(), std::strerror(errno)));
    if (!S_ISREG(status.st_mode) && !S_ISBLK(status.st_mode))
        throw ConfigError(path_key, fmt::format("{} is not a regular file or block device", disk.path.string()));
    const uint64_t size = size_of(fd.get(), status);
    if (size == 0) throw ConfigError(path_key, fmt::format("{} is empty", disk.path.string()));
    if (size % DiskImage::kSectorSize != 0)
        throw ConfigError(path_key, fmt::format("{} holds {} bytes, not a multiple of {} (unaligned)", disk.path.string(),
                                                size, DiskImage::kSectorSize));
    if (disk.size_mib && size != (*disk.size_mib << 20))
        throw ConfigError(path_key, fmt::format("{} holds {} bytes, but {}.size_mib says {} MiB ({} bytes): {}",
                                                disk.path.string(), size, key_path, *disk.size_mib, *disk.size_mib << 20,
                                                size < (*disk.size_mib << 20) ? "too short" : "too long"));
    if (!lock_image(fd.get(), disk.read_only))
        throw ConfigError(path_key, fmt::format("{} is in use (locked) by another disk or VM: {}", disk.path.string(),
                                                std::strerror(errno)));
    return DiskImage{disk, std::move(fd), size};
}

bool release_disk_images(std::vector<DiskImage>& disks, std::chrono::milliseconds limit) {
    std::vector<std::filesystem::path> writable;
    for (const DiskImage& disk : disks)
        if (!disk.config.read_only) writable.push_back(disk.config.path);
    disks.clear();  // our own references (and lock holders) go first
    const auto deadline = std::chrono::steady_clock::now() + limit;
    bool all_released = true;
    for (const std::filesystem::path& path : writable) {
        for (;;) {
            UniqueFd probe(::open(path.c_str(), O_RDWR | O_CLOEXEC));
            if (!probe.valid() || lock_image(probe.get(), false)) break;  // gone, or free (closing unlocks)
            if (std::chrono::steady_clock::now() >= deadline) {
                all_released = false;
                break;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }
    return all_released;
}

std::vector<DiskImage> take_disks(std::vector<DiskImage>& disks, DiskBus bus) {
    std::vector<DiskImage> taken;
    for (auto disk = disks.begin(); disk != disks.end();) {
        if (disk->config.bus != bus) {
            ++disk;
            continue;
        }
        taken.push_back(std::move(*disk));
        disk = disks.erase(disk);
    }
    return taken;
}

std::vector<DiskImage> open_disk_images(const std::vector<DiskConfig>& disks) {
    std::vector<DiskImage> images;
    for (size_t i = 0; i < disks.size(); ++i) images.push_back(open_disk_image(disks[i], fmt::format("disks[{}]", i)));
    return images;
}

}  // namespace hvkvm::vmm
