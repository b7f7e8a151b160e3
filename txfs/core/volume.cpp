// Volume lifetime (format, mount, unmount), block I/O, the log's write side, group commit and
// checkpoints.
#include <initializer_list>
#include <stdarg.h>

#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"
#include "lib/format.h"

namespace txfs {
namespace {

bool device_usable(BlockDevice& device) {
    const uint32_t sector = device.sector_size();
    return sector >= 512 && sector <= kBlockSize && (sector & (sector - 1)) == 0 && device.size_bytes() >= 2 * kBlockSize;
}

void seal_superblock(Superblock& superblock) {
    superblock.crc = crc32c_with_zero_field(&superblock, sizeof(superblock), offsetof(Superblock, crc));
}

void seal_inode(DiskInode& inode) { inode.crc = crc32c_with_zero_field(&inode, sizeof(inode), offsetof(DiskInode, crc)); }

DiskInode root_inode(uint32_t number, NodeType type) {
    DiskInode inode{};
    inode.number = number;
    inode.type = static_cast<uint16_t>(type);
    seal_inode(inode);
    return inode;
}

}  // namespace

// ---- lifetime ----

Volume::Volume(BlockDevice& device, Platform& platform, const MountOptions& options, const Superblock& superblock)
    : device_(device), platform_(platform), options_(options), superblock_(superblock), inodes_(platform),
      flags_(platform), owner_(platform), first_child_(platform), next_sibling_(platform), committed_bits_(platform),
      in_use_bits_(platform), dirty_meta_(platform), dirty_blocks_(platform), repair_queue_(platform) {}

Volume::~Volume() {
    delete changed_;
    delete mutex_;
}

Status Volume::allocate_tables() {
    mutex_ = platform_.create_mutex();
    changed_ = platform_.create_condition();
    const uint32_t inodes = superblock_.inode_count;
    const size_t bitmap_bytes = static_cast<size_t>((superblock_.block_count + 7) / 8);
    const bool ok = mutex_ && changed_ && inodes_.resize(inodes) && flags_.resize(inodes) && owner_.resize(inodes) &&
                    first_child_.resize(inodes) && next_sibling_.resize(inodes) && committed_bits_.resize(bitmap_bytes) &&
                    in_use_bits_.resize(bitmap_bytes) &&
                    dirty_meta_.resize(superblock_.bitmap_blocks + superblock_.inode_table_blocks);
    return ok ? Status::kOk : Status::kNoMemory;
}

void Volume::destroy(Volume* volume) {
    if (!volume) return;
    if (volume->worker_) {
        volume->mutex_->lock();
        volume->stopping_ = true;
        volume->changed_->notify_all();
        volume->mutex_->unlock();
        volume->worker_->join();
        delete volume->worker_;
        volume->worker_ = nullptr;
    }
    Platform& platform = volume->platform_;
    destroy_object(platform, volume);
}

Status Volume::unmount() {
    Status status = Status::kOk;
    if (!options_.read_only) {
        MutexGuard guard(*mutex_);
        if (!failed_) status = checkpoint_locked();
    }
    destroy(this);
    return status;
}

Status Volume::format(BlockDevice& device, Platform& platform, const FormatOptions& options) {
    if (!device_usable(device) || options.volume_id == 0) return Status::kInvalidArgument;
    Layout layout;
    if (!compute_layout(device.size_bytes() / kBlockSize, options.inode_count, options.log_blocks, layout))
        return Status::kInvalidArgument;
    Buffer block(platform);
    if (!block.allocate(kBlockSize)) return Status::kNoMemory;
    auto write = [&](uint32_t number) { return device.write(uint64_t{number} * kBlockSize, block.data(), kBlockSize, WriteMode::kNormal); };

    const uint32_t meta_blocks = layout.bitmap_blocks + layout.inode_table_blocks;
    for (uint32_t index = 0; index < meta_blocks; ++index) {
        __builtin_memset(block.data(), 0, kBlockSize);
        if (index < layout.bitmap_blocks) {
            uint8_t* bits = block.data() + sizeof(BitmapBlockHeader);
            const uint64_t first = uint64_t{index} * kBitsPerBitmapBlock;
            for (uint64_t b = first; b < layout.data_start && b < first + kBitsPerBitmapBlock; ++b)
                bits[(b - first) / 8] |= static_cast<uint8_t>(1u << ((b - first) % 8));
            BitmapBlockHeader header{kBitmapMagic, 0, index, {}};
            __builtin_memcpy(block.data(), &header, sizeof(header));
            header.crc = crc32c(block.data(), kBlockSize);
            __builtin_memcpy(block.data(), &header, sizeof(header));
        } else {
            DiskInode* inodes = reinterpret_cast<DiskInode*>(block.data());
            for (uint32_t slot = 0; slot < kInodesPerBlock; ++slot) {
                const uint32_t number = (index - layout.bitmap_blocks) * kInodesPerBlock + slot;
                inodes[slot] = number == kRootDirectory ? root_inode(number, NodeType::kDirectory)
                               : number == kRegistryRoot ? root_inode(number, NodeType::kKey)
                                                         : root_inode(number, NodeType::kFree);
            }
        }
        for (uint32_t start : {layout.meta_start, layout.mirror_start})
            if (Status status = write(start + index); status != Status::kOk) return status;
    }
    __builtin_memset(block.data(), 0, kBlockSize);
    for (uint32_t index = 0; index < layout.log_blocks; ++index)
        if (Status status = write(layout.log_start + index); status != Status::kOk) return status;
    if (Status status = device.flush(); status != Status::kOk) return status;

    Superblock superblock{};
    superblock.magic = kSuperblockMagic;
    superblock.version = kFormatVersion;
    superblock.volume_id = options.volume_id;
    superblock.block_count = layout.block_count;
    superblock.block_size = kBlockSize;
    superblock.inode_count = layout.inode_count;
    superblock.bitmap_blocks = layout.bitmap_blocks;
    superblock.inode_table_blocks = layout.inode_table_blocks;
    superblock.meta_start = layout.meta_start;
    superblock.mirror_start = layout.mirror_start;
    superblock.log_start = layout.log_start;
    superblock.log_blocks = layout.log_blocks;
    superblock.data_start = layout.data_start;
    superblock.log_epoch = 1;
    superblock.next_transaction_id = 1;
    for (uint32_t copy = 0; copy < 2; ++copy) {
        superblock.sequence = copy + 1;
        seal_superblock(superblock);
        __builtin_memset(block.data(), 0, kBlockSize);
        __builtin_memcpy(block.data(), &superblock, sizeof(superblock));
        if (Status status = device.write(uint64_t{copy} * kBlockSize, block.data(), kBlockSize, WriteMode::kFua);
            status != Status::kOk)
            return status;
    }
    return Status::kOk;
}

Status Volume::mount(BlockDevice& device, Platform& platform, const MountOptions& options, Volume** out) {
    *out = nullptr;
    if (!device_usable(device)) return Status::kBadImage;
    Superblock superblock;
    if (Status status = read_superblock(device, &superblock, platform); status != Status::kOk) return status;
    Volume* volume = create_object<Volume>(platform, device, platform, options, superblock);
    if (!volume) return Status::kNoMemory;
    uint64_t end_lsn = 0;
    Status status = volume->allocate_tables();
    if (status == Status::kOk) status = volume->load_metadata();
    if (status == Status::kOk) status = volume->replay_log(&end_lsn);
    if (status == Status::kOk) {
        volume->validate_inodes();
        volume->rebuild_tree();
        if (volume->is_offline(kRootDirectory) || volume->is_offline(kRegistryRoot)) {
            volume->note(LogLevel::kError, "mount: a root (inode 1 or 2) is damaged beyond repair");
            status = Status::kBadImage;
        }
    }
    if (status == Status::kOk) status = volume->reconcile_allocation();
    volume->log_head_ = volume->durable_lsn_ = end_lsn;
    volume->next_transaction_id_ = volume->superblock_.next_transaction_id;
    if (status == Status::kOk && !options.read_only) {
        // Start a new epoch with an empty log: stale records past the end can never be replayed.
        status = volume->erase_stale_records(end_lsn);
        if (status == Status::kOk) {
            volume->superblock_.log_epoch += 1;
            MutexGuard guard(*volume->mutex_);
            status = volume->checkpoint_locked(true);
        }
    }
    if (status == Status::kOk && !options.read_only && options.repair_worker) {
        volume->worker_ = platform.start_worker(&Volume::repair_worker_entry, volume);
        if (!volume->worker_) status = Status::kNoMemory;
    }
    if (status != Status::kOk) {
        destroy(volume);
        return status;
    }
    *out = volume;
    return Status::kOk;
}

// ---- block I/O ----

Status Volume::read_block(uint32_t block, void* buffer) {
    return device_.read(uint64_t{block} * kBlockSize, buffer, kBlockSize);
}

Status Volume::write_block(uint32_t block, const void* data, WriteMode mode) {
    if (options_.read_only) return Status::kReadOnly;
    Status status = device_.write(uint64_t{block} * kBlockSize, data, kBlockSize, mode);
    if (status != Status::kOk) failed_ = true;
    return status;
}

Status Volume::read_committed_block(uint32_t block, void* buffer) {
    if (const uint8_t* cached = dirty_blocks_.find(block)) {
        __builtin_memcpy(buffer, cached, kBlockSize);
        return Status::kOk;
    }
    return read_block(block, buffer);
}

// ---- bitmaps and metadata encoding ----

void Volume::set_bit(Vector<uint8_t>& bits, uint32_t block, bool value) {
    const uint8_t mask = static_cast<uint8_t>(1u << (block % 8));
    bits[block / 8] = value ? (bits[block / 8] | mask) : (bits[block / 8] & ~mask);
}

void Volume::encode_bitmap_block(uint32_t index, uint8_t* out) const {
    __builtin_memset(out, 0, kBlockSize);
    uint8_t* bits = out + sizeof(BitmapBlockHeader);
    const uint64_t first = uint64_t{index} * kBitsPerBitmapBlock;
    for (uint64_t block = first; block < superblock_.block_count && block < first + kBitsPerBitmapBlock; ++block)
        if (bit(committed_bits_, static_cast<uint32_t>(block)))
            bits[(block - first) / 8] |= static_cast<uint8_t>(1u << ((block - first) % 8));
    BitmapBlockHeader header{kBitmapMagic, 0, index, {}};
    __builtin_memcpy(out, &header, sizeof(header));
    header.crc = crc32c(out, kBlockSize);
    __builtin_memcpy(out, &header, sizeof(header));
}

void Volume::encode_inode_block(uint32_t index, uint8_t* out) const {
    __builtin_memcpy(out, &inodes_[index * kInodesPerBlock], kBlockSize);
}

// ---- log writing, group commit, checkpoint ----

Status Volume::write_record(uint64_t lsn, const uint8_t* data, uint32_t blocks) {
    for (uint32_t index = 0; index < blocks; ++index) {
        const uint32_t position = static_cast<uint32_t>((lsn + index) % superblock_.log_blocks);
        if (Status status = write_block(superblock_.log_start + position, data + uint64_t{index} * kBlockSize);
            status != Status::kOk)
            return status;
    }
    return Status::kOk;
}

// Waits until the log is durable up to end_lsn. The first waiter with no flush running becomes
// the leader and flushes everything written so far, so concurrent committers share one flush.
Status Volume::wait_for_flush(uint64_t end_lsn) {
    while (durable_lsn_ < end_lsn) {
        if (failed_) return Status::kIoError;
        if (flushing_) {
            changed_->wait(*mutex_);
            continue;
        }
        flushing_ = true;
        const uint64_t target = log_head_;
        mutex_->unlock();
        const Status status = device_.flush();
        mutex_->lock();
        flushing_ = false;
        ++stats_.log_flushes;
        if (status != Status::kOk) failed_ = true;
        else if (target > durable_lsn_) durable_lsn_ = target;
        changed_->notify_all();
    }
    return Status::kOk;
}

// Superblock copies alternate (sequence parity picks the slot), each written with FUA, so a torn
// superblock write always leaves the previous one intact.
Status Volume::write_superblocks(bool both) {
    Buffer block(platform_);
    if (!block.allocate(kBlockSize)) return Status::kNoMemory;
    for (int copy = 0; copy < (both ? 2 : 1); ++copy) {
        superblock_.sequence += 1;
        superblock_.next_transaction_id = next_transaction_id_;
        seal_superblock(superblock_);
        __builtin_memcpy(block.data(), &superblock_, sizeof(superblock_));
        if (Status status = write_block(static_cast<uint32_t>(superblock_.sequence % 2), block.data(), WriteMode::kFua);
            status != Status::kOk)
            return status;
    }
    return Status::kOk;
}

// Writes every committed change home, then moves the log tail to the head (mutex held).
//   home data + primary metadata -> flush -> mirror metadata -> flush -> superblock (FUA)
// The primary and its mirror are never in flight together, so one of them is always intact.
Status Volume::checkpoint_locked(bool both_superblocks) {
    if (options_.read_only) return Status::kReadOnly;
    while (checkpointing_) changed_->wait(*mutex_);
    checkpointing_ = true;
    while (in_flight_ > 0) changed_->wait(*mutex_);
    Status status = failed_ ? Status::kIoError : Status::kOk;
    Buffer block(platform_);
    if (status == Status::kOk && !block.allocate(kBlockSize)) status = Status::kNoMemory;
    if (status == Status::kOk) {
        dirty_blocks_.for_each([&](uint32_t number, const uint8_t* data) {
            if (status == Status::kOk) status = write_block(number, data);
        });
    }
    const uint32_t meta_blocks = superblock_.bitmap_blocks + superblock_.inode_table_blocks;
    for (uint32_t start : {superblock_.meta_start, superblock_.mirror_start}) {
        for (uint32_t index = 0; index < meta_blocks && status == Status::kOk; ++index) {
            if (!dirty_meta_[index]) continue;
            if (index < superblock_.bitmap_blocks) encode_bitmap_block(index, block.data());
            else encode_inode_block(index - superblock_.bitmap_blocks, block.data());
            status = write_block(start + index, block.data());
        }
        if (status == Status::kOk) status = device_.flush();
    }
    if (status == Status::kOk) {
        superblock_.log_tail = log_head_;
        status = write_superblocks(both_superblocks);
    }
    if (status == Status::kOk) {
        for (uint8_t& dirty : dirty_meta_) dirty = 0;
        dirty_blocks_.clear();
        ++stats_.checkpoints;
    } else {
        failed_ = true;
    }
    checkpointing_ = false;
    changed_->notify_all();
    return status;
}

Status Volume::checkpoint() {
    MutexGuard guard(*mutex_);
    return checkpoint_locked();
}

VolumeStats Volume::stats() {
    MutexGuard guard(*mutex_);
    return stats_;
}

uint64_t Volume::log_used_blocks() {
    MutexGuard guard(*mutex_);
    return log_used_blocks_locked();
}

void Volume::note(LogLevel level, const char* format, ...) {
    char message[256];
    va_list arguments;
    va_start(arguments, format);
    hvkvm::guest::format_v(message, sizeof(message), format, arguments);
    va_end(arguments);
    platform_.log(level, message);
}

}  // namespace txfs
