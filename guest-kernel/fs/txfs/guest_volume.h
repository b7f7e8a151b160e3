// A txfs volume on a guest block device: the device adapter, the platform and the mounted Volume,
// owned together (the Volume refers to the other two, so they live exactly as long).
#pragma once

#include <stdint.h>

#include "block/block.h"
#include "core/volume.h"
#include "fs/txfs/disk_device.h"
#include "fs/txfs/kernel_platform.h"

namespace hvkvm::guest::fs {

class GuestVolume {
public:
    explicit GuestVolume(block::Device& device) : disk_(device) {}
    ~GuestVolume();  // unmounts cleanly if still mounted
    GuestVolume(const GuestVolume&) = delete;
    GuestVolume& operator=(const GuestVolume&) = delete;

    // Formats the device (not mounted). volume_id 0 picks one from the clock.
    txfs::Status format(txfs::FormatOptions options);
    txfs::Status mount(const txfs::MountOptions& options = {});
    txfs::Status unmount();  // checkpoint, stop the repair worker
    // Drops the mounted volume without writing anything more, as a power cut would (tests).
    void power_cut();

    bool mounted() const { return volume_ != nullptr; }
    txfs::Volume& volume() { return *volume_; }
    DiskDevice& disk() { return disk_; }
    KernelPlatform& platform() { return platform_; }
    uint64_t mount_duration_ns() const { return mount_duration_ns_; }

private:
    DiskDevice disk_;
    KernelPlatform platform_;
    txfs::Volume* volume_ = nullptr;
    uint64_t mount_duration_ns_ = 0;
};

}  // namespace hvkvm::guest::fs
