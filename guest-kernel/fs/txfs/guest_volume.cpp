#include "fs/txfs/guest_volume.h"

#include "arch/x86_64/time.h"

namespace hvkvm::guest::fs {

GuestVolume::~GuestVolume() {
    if (volume_) unmount();
}

txfs::Status GuestVolume::format(txfs::FormatOptions options) {
    if (volume_) return txfs::Status::kInvalidArgument;
    if (options.volume_id == 0) options.volume_id = (time::now_ns() * 0x9e3779b97f4a7c15ull) | 1;
    return txfs::Volume::format(disk_, platform_, options);
}

txfs::Status GuestVolume::mount(const txfs::MountOptions& options) {
    if (volume_) return txfs::Status::kInvalidArgument;
    const uint64_t start = time::now_ns();
    const txfs::Status status = txfs::Volume::mount(disk_, platform_, options, &volume_);
    mount_duration_ns_ = time::now_ns() - start;
    return status;
}

txfs::Status GuestVolume::unmount() {
    if (!volume_) return txfs::Status::kInvalidArgument;
    txfs::Volume* volume = volume_;
    volume_ = nullptr;
    return volume->unmount();
}

void GuestVolume::power_cut() {
    if (!volume_) return;
    txfs::Volume::destroy(volume_);
    volume_ = nullptr;
}

}  // namespace hvkvm::guest::fs
