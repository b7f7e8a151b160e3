// fsck: verifies a mounted volume. Structural checks (superblocks, metadata copies, the tree, block
// ownership against the bitmap) run under the volume lock on the committed state; block checksums
// are then verified one object at a time, taking the lock per object, so the volume stays usable
// while a check runs. Damage found is also handed to the repair worker.
#include <initializer_list>
#include <stdarg.h>

#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"
#include "lib/format.h"

namespace txfs {

struct Volume::CheckContext {
    CheckCallback callback;
    void* user;
    CheckSummary summary;

    __attribute__((format(printf, 3, 4))) void report(Finding finding, const char* format, ...) {
        char message[256];
        va_list arguments;
        va_start(arguments, format);
        hvkvm::guest::format_v(message, sizeof(message), format, arguments);
        va_end(arguments);
        ++(finding == Finding::kError ? summary.errors : summary.notes);
        if (callback) callback(user, finding, message);
    }
};

// Both superblocks, and every metadata block whose in-memory state has already been written
// home, must be valid on disk in both copies and equal to the committed state.
void Volume::check_metadata_copies(CheckContext& context) {
    Buffer expected(platform_), actual(platform_);
    if (!expected.allocate(kBlockSize) || !actual.allocate(kBlockSize)) return;
    for (uint32_t copy = 0; copy < 2; ++copy) {
        Superblock superblock;
        if (read_block(copy, actual.data()) != Status::kOk) {
            context.report(Finding::kError, "superblock copy %u unreadable", copy);
            continue;
        }
        __builtin_memcpy(&superblock, actual.data(), sizeof(superblock));
        if (superblock.magic != kSuperblockMagic ||
            superblock.crc != crc32c_with_zero_field(&superblock, sizeof(superblock), offsetof(Superblock, crc)))
            context.report(Finding::kError, "superblock copy %u is invalid", copy);
    }
    const uint32_t meta_blocks = superblock_.bitmap_blocks + superblock_.inode_table_blocks;
    for (uint32_t index = 0; index < meta_blocks; ++index) {
        if (dirty_meta_[index]) continue;  // newer state is in the log, written at the next checkpoint
        if (index < superblock_.bitmap_blocks) encode_bitmap_block(index, expected.data());
        else encode_inode_block(index - superblock_.bitmap_blocks, expected.data());
        const char* what = index < superblock_.bitmap_blocks ? "bitmap" : "inode table";
        for (uint32_t start : {superblock_.meta_start, superblock_.mirror_start}) {
            const char* copy = start == superblock_.meta_start ? "primary" : "mirror";
            if (read_block(start + index, actual.data()) != Status::kOk) {
                context.report(Finding::kError, "%s block %u (%s) unreadable", what, index, copy);
                continue;
            }
            if (index >= superblock_.bitmap_blocks) {
                // Compare inode by inode, skipping inodes whose image is unknown (already reported).
                for (uint32_t slot = 0; slot < kInodesPerBlock; ++slot) {
                    const uint32_t number = (index - superblock_.bitmap_blocks) * kInodesPerBlock + slot;
                    if (flags_[number] & kDamaged) continue;
                    if (__builtin_memcmp(actual.data() + slot * sizeof(DiskInode), expected.data() + slot * sizeof(DiskInode),
                                         sizeof(DiskInode)) != 0) {
                        context.report(Finding::kError, "inode %u: %s copy on disk differs from the committed inode", number, copy);
                        dirty_meta_[index] = 1;  // self-heal: rewritten at the next checkpoint
                    }
                }
            } else if (__builtin_memcmp(actual.data(), expected.data(), kBlockSize) != 0) {
                context.report(Finding::kError, "%s block %u: %s copy on disk differs from the committed bitmap", what, index, copy);
                dirty_meta_[index] = 1;
            }
        }
    }
}

void Volume::check_tree(CheckContext& context) {
    for (uint32_t number = 1; number < superblock_.inode_count; ++number) {
        const uint8_t flags = flags_[number];
        const DiskInode& image = inodes_[number];
        if (flags & kDamaged) {
            context.report(Finding::kError, "inode %u: no valid copy (offline)", number);
            continue;
        }
        if (static_cast<NodeType>(image.type) == NodeType::kFree) continue;
        ++context.summary.inodes_in_use;
        if (flags & kOfflineFlags) ++context.summary.offline_objects;
        if (flags & kInvalid) context.report(Finding::kError, "inode %u: impossible content (offline)", number);
        if (flags & kOrphan) context.report(Finding::kError, "inode %u: unreachable from a root (offline)", number);
        if (flags & kDataCorrupt) context.report(Finding::kError, "inode %u: damaged data (offline)", number);
        // Names are unique among a directory's entries, and among a key's subkeys and its values.
        for (uint32_t sibling = next_sibling_[number]; sibling != kNoInode; sibling = next_sibling_[sibling]) {
            const DiskInode& other = inodes_[sibling];
            const bool same_kind = (other.type == static_cast<uint16_t>(NodeType::kValue)) ==
                                   (image.type == static_cast<uint16_t>(NodeType::kValue));
            if (same_kind && other.name_length == image.name_length &&
                __builtin_memcmp(other.name, image.name, image.name_length) == 0)
                context.report(Finding::kError, "inodes %u and %u: same name '%.*s' under inode %u", number, sibling,
                               static_cast<int>(image.name_length), image.name, image.parent);
        }
    }
}

// Every block is owned at most once, owned blocks are allocated, allocated blocks are owned.
void Volume::check_blocks(CheckContext& context) {
    Vector<uint32_t> owner(platform_);
    Vector<BlockRef> refs(platform_);
    if (!owner.resize(static_cast<size_t>(superblock_.block_count)) || !refs.resize(kMaxFileBlocks)) {
        context.report(Finding::kError, "out of memory checking block ownership");
        return;
    }
    for (uint32_t number = 1; number < superblock_.inode_count; ++number) {
        const DiskInode& image = inodes_[number];
        if ((flags_[number] & (kDamaged | kInvalid)) || static_cast<NodeType>(image.type) == NodeType::kFree) continue;
        const uint32_t blocks = blocks_for_size(image.size);
        for (uint32_t index = 0; index < blocks; ++index) refs[index] = BlockRef{0, 0};
        if (load_refs(image, number, refs) != Status::kOk)
            context.report(Finding::kError, "inode %u: indirect block %u unreadable or corrupt", number, image.indirect.block);
        auto claim = [&](uint32_t block) {
            if (block == 0) return;
            if (block < superblock_.data_start || block >= superblock_.block_count) {
                context.report(Finding::kError, "inode %u: block %u is outside the data area", number, block);
                return;
            }
            if (owner[block]) context.report(Finding::kError, "block %u claimed by inodes %u and %u", block, owner[block], number);
            else owner[block] = number;
        };
        for (uint32_t index = 0; index < blocks; ++index) claim(refs[index].block);
        if (blocks > kDirectBlocks) claim(image.indirect.block);
    }
    for (uint32_t block = 0; block < superblock_.block_count; ++block) {
        const bool allocated = bit(committed_bits_, block);
        const bool used = block < superblock_.data_start || owner[block] != 0;
        if (used) ++context.summary.blocks_in_use;
        if (used && !allocated) context.report(Finding::kError, "block %u is in use but free in the bitmap", block);
        if (!used && allocated) context.report(Finding::kError, "block %u is allocated but unused (leaked)", block);
    }
}

Status Volume::check(CheckCallback callback, void* context_pointer, CheckSummary* summary) {
    CheckContext context{callback, context_pointer, {}};
    uint32_t inode_count;
    {
        MutexGuard guard(*mutex_);
        check_metadata_copies(context);
        check_tree(context);
        check_blocks(context);
        if (log_used_blocks_locked() > 0)
            context.report(Finding::kNote, "log holds %llu block(s) of committed records not yet checkpointed",
                           static_cast<unsigned long long>(log_used_blocks_locked()));
        inode_count = superblock_.inode_count;
    }
    // Block checksums, one object at a time (reads through the committed block cache).
    Buffer block(platform_);
    Vector<BlockRef> refs(platform_);
    if (!block.allocate(kBlockSize) || !refs.resize(kMaxFileBlocks)) return Status::kNoMemory;
    for (uint32_t number = 1; number < inode_count; ++number) {
        MutexGuard guard(*mutex_);
        const DiskInode& image = inodes_[number];
        if ((flags_[number] & kOfflineFlags) || static_cast<NodeType>(image.type) == NodeType::kFree) continue;
        const uint32_t blocks = blocks_for_size(image.size);
        if (load_refs(image, number, refs) != Status::kOk) {
            context.report(Finding::kError, "inode %u: indirect block checksum mismatch", number);
            continue;
        }
        for (uint32_t index = 0; index < blocks; ++index) {
            if (read_committed_block(refs[index].block, block.data()) != Status::kOk ||
                crc32c(block.data(), kBlockSize) != refs[index].crc) {
                context.report(Finding::kError, "inode %u: block %u (index %u) checksum mismatch", number, refs[index].block, index);
                report_corruption(number, "block checksum mismatch found by check", refs[index].block);
                break;
            }
        }
    }
    if (summary) *summary = context.summary;
    return Status::kOk;
}

}  // namespace txfs
