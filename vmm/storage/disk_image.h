// A disk image as the VMM hands it to a device (the IDE controller) or the root partition
// (storvsp): opened, checked and locked before any VM exists, so that every problem with it is an
// input error (exit 2) naming its config key:
//   - missing or unreadable; not a regular file or block device;
//   - empty, or a size that is not a multiple of 512 bytes ("unaligned");
//   - shorter (or longer) than `size_mib` when the config states one;
//   - in use: an exclusive lock (OFD lock on the whole file) held by another disk of this VM or
//     by another process. The lock lives as long as the open file, i.e. the VM.
// cache "none" opens with O_DIRECT (I/O must then be 512-byte aligned in offset, size and
// buffer address); read_only opens O_RDONLY and takes a shared lock only.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

struct DiskImage {
    DiskConfig config;
    UniqueFd fd;
    uint64_t size_bytes = 0;
    static constexpr uint32_t kSectorSize = 512;
    uint64_t sectors() const { return size_bytes / kSectorSize; }
};

// Opens every disk of the config, in order. Throws ConfigError("disks[i].path", ...) for the first
// that cannot be used.
std::vector<DiskImage> open_disk_images(const std::vector<DiskConfig>& disks);

DiskImage open_disk_image(const DiskConfig& disk, const std::string& key_path);

// Closes `disks` once whoever else they were handed to is gone, and waits, at most `limit`, until
// every writable image can be locked again through a new open file; false if one could not. Why:
// the root partition gives its disks to io_uring, which drops its references to the files after
// the process exits, in a kernel worker (the ring's deferred teardown), and until then the OFD
// lock, which belongs to the open file, stays held: a VM started at once on the same image was
// refused as "in use" (10-20 ms here). Read-only images are not waited for (their shared lock
// only stands in a writer's way, and another reader may hold one legitimately).
bool release_disk_images(std::vector<DiskImage>& disks, std::chrono::milliseconds limit);

// Moves the disks on `bus` out of `disks` (in config order): how a device takes its own.
std::vector<DiskImage> take_disks(std::vector<DiskImage>& disks, DiskBus bus);

}  // namespace hvkvm::vmm
