// Mount-time recovery. Nothing read from the device is trusted: the superblock must describe the
// layout mkfs would compute, every structure is checksummed, and every number is range-checked
// before it indexes anything. A damaged object is taken offline; only a damaged superblock pair or
// root makes the mount fail.
//
//   1. pick the valid superblock with the highest sequence
//   2. load the bitmap and inode table, each item from the primary or else the mirror copy
//   3. replay log records from the tail while they are intact and of this epoch
//   4. validate inodes, rebuild the tree from parent links, cross-check block allocation
//   5. (read-write) erase stale records of this epoch past the end, start a new epoch, checkpoint
#include <initializer_list>

#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"

namespace txfs {
namespace {

bool superblock_valid(const Superblock& superblock, uint64_t device_bytes) {
    if (superblock.magic != kSuperblockMagic || superblock.version != kFormatVersion || superblock.block_size != kBlockSize)
        return false;
    if (superblock.crc != crc32c_with_zero_field(&superblock, sizeof(superblock), offsetof(Superblock, crc))) return false;
    Layout layout;
    if (!compute_layout(superblock.block_count, superblock.inode_count, superblock.log_blocks, layout)) return false;
    return superblock.volume_id != 0 && superblock.block_count <= device_bytes / kBlockSize &&
           layout.bitmap_blocks == superblock.bitmap_blocks && layout.inode_table_blocks == superblock.inode_table_blocks &&
           layout.meta_start == superblock.meta_start && layout.mirror_start == superblock.mirror_start &&
           layout.log_start == superblock.log_start && layout.data_start == superblock.data_start &&
           superblock.log_epoch != 0;
}

bool bitmap_block_valid(const uint8_t* block, uint32_t index) {
    BitmapBlockHeader header;
    __builtin_memcpy(&header, block, sizeof(header));
    return header.magic == kBitmapMagic && header.index == index &&
           header.crc == crc32c_with_zero_field(block, kBlockSize, offsetof(BitmapBlockHeader, crc));
}

bool inode_copy_valid(const DiskInode& inode, uint32_t number) {
    return inode.number == number && inode.crc == crc32c_with_zero_field(&inode, sizeof(inode), offsetof(DiskInode, crc));
}

bool compatible_parent(NodeType child, NodeType parent) {
    if (child == NodeType::kDirectory || child == NodeType::kFile) return parent == NodeType::kDirectory;
    if (child == NodeType::kKey || child == NodeType::kValue) return parent == NodeType::kKey;
    return false;
}

}  // namespace

Status Volume::read_superblock(BlockDevice& device, Superblock* out, Platform& platform) {
    Buffer block(platform);
    if (!block.allocate(kBlockSize)) return Status::kNoMemory;
    bool found = false;
    for (uint32_t copy = 0; copy < 2; ++copy) {
        if (device.read(uint64_t{copy} * kBlockSize, block.data(), kBlockSize) != Status::kOk) continue;
        Superblock candidate;
        __builtin_memcpy(&candidate, block.data(), sizeof(candidate));
        if (!superblock_valid(candidate, device.size_bytes())) continue;
        if (!found || candidate.sequence > out->sequence) *out = candidate;
        found = true;
    }
    return found ? Status::kOk : Status::kBadImage;
}

Status Volume::load_metadata() {
    Buffer primary(platform_), mirror(platform_);
    if (!primary.allocate(kBlockSize) || !mirror.allocate(kBlockSize)) return Status::kNoMemory;
    const uint32_t meta_blocks = superblock_.bitmap_blocks + superblock_.inode_table_blocks;
    for (uint32_t index = 0; index < meta_blocks; ++index) {
        const bool primary_read = read_block(superblock_.meta_start + index, primary.data()) == Status::kOk;
        const bool mirror_read = read_block(superblock_.mirror_start + index, mirror.data()) == Status::kOk;
        if (!primary_read) __builtin_memset(primary.data(), 0, kBlockSize);
        if (!mirror_read) __builtin_memset(mirror.data(), 0, kBlockSize);
        if (__builtin_memcmp(primary.data(), mirror.data(), kBlockSize) != 0) dirty_meta_[index] = 1;
        if (index < superblock_.bitmap_blocks) {
            const bool primary_ok = bitmap_block_valid(primary.data(), index);
            const uint8_t* chosen = primary_ok ? primary.data() : bitmap_block_valid(mirror.data(), index) ? mirror.data() : nullptr;
            if (!chosen) {
                note(LogLevel::kWarning, "mount: bitmap block %u has no valid copy; rebuilding it from the inodes", index);
                bitmap_lost_ = true;
                continue;
            }
            if (!primary_ok) note(LogLevel::kWarning, "mount: bitmap block %u: primary copy invalid, using the mirror", index);
            const uint64_t first = uint64_t{index} * kBitsPerBitmapBlock;
            const uint8_t* bits = chosen + sizeof(BitmapBlockHeader);
            for (uint64_t block = first; block < superblock_.block_count && block < first + kBitsPerBitmapBlock; ++block)
                set_bit(committed_bits_, static_cast<uint32_t>(block), (bits[(block - first) / 8] >> ((block - first) % 8)) & 1);
            continue;
        }
        const uint32_t table_block = index - superblock_.bitmap_blocks;
        for (uint32_t slot = 0; slot < kInodesPerBlock; ++slot) {
            const uint32_t number = table_block * kInodesPerBlock + slot;
            DiskInode first_copy, second_copy;
            __builtin_memcpy(&first_copy, primary.data() + slot * sizeof(DiskInode), sizeof(DiskInode));
            __builtin_memcpy(&second_copy, mirror.data() + slot * sizeof(DiskInode), sizeof(DiskInode));
            if (inode_copy_valid(first_copy, number)) {
                inodes_[number] = first_copy;
            } else if (inode_copy_valid(second_copy, number)) {
                note(LogLevel::kWarning, "mount: inode %u: primary copy invalid, using the mirror", number);
                inodes_[number] = second_copy;
            } else {
                __builtin_memset(&inodes_[number], 0, sizeof(DiskInode));
                inodes_[number].number = number;
                flags_[number] |= kDamaged;
            }
        }
    }
    return Status::kOk;
}

// Reads and verifies the record at `lsn`. kNotFound: no record of this volume and epoch there
// (the normal end of the log); kCorrupt: a header but a damaged body.
Status Volume::read_record(uint64_t lsn, uint64_t epoch_wanted, Buffer& record, LogRecordHeader* header) {
    const uint32_t log_blocks = superblock_.log_blocks;
    if (!record.allocate(kBlockSize)) return Status::kNoMemory;
    if (Status status = read_block(superblock_.log_start + static_cast<uint32_t>(lsn % log_blocks), record.data());
        status != Status::kOk)
        return status;
    __builtin_memcpy(header, record.data(), sizeof(*header));
    const bool header_ok =
        header->magic == kLogRecordMagic &&
        header->header_crc == crc32c_with_zero_field(header, sizeof(*header), offsetof(LogRecordHeader, header_crc)) &&
        header->volume_id == superblock_.volume_id && header->lsn == lsn &&
        (epoch_wanted == 0 || header->epoch == epoch_wanted) && header->block_count >= 1 &&
        header->block_count < log_blocks &&
        header->payload_bytes <= uint64_t{header->block_count} * kBlockSize - sizeof(LogRecordHeader) &&
        header->op_count <= header->payload_bytes / sizeof(LogOp);
    if (!header_ok) return Status::kNotFound;
    if (!record.allocate(size_t{header->block_count} * kBlockSize)) return Status::kNoMemory;
    for (uint32_t index = 0; index < header->block_count; ++index) {
        const uint32_t position = static_cast<uint32_t>((lsn + index) % log_blocks);
        if (Status status = read_block(superblock_.log_start + position, record.data() + size_t{index} * kBlockSize);
            status != Status::kOk)
            return status;
    }
    if (crc32c(record.data() + sizeof(LogRecordHeader), header->payload_bytes) != header->payload_crc) return Status::kCorrupt;
    return Status::kOk;
}

// Applies one verified record. The op stream is checked whole before anything is applied, so a
// well-checksummed but malformed (hostile) record changes nothing.
Status Volume::apply_record(const uint8_t* payload, uint32_t payload_bytes, uint32_t op_count) {
    for (int pass = 0; pass < 2; ++pass) {
        uint32_t offset = 0;
        for (uint32_t index = 0; index < op_count; ++index) {
            if (payload_bytes - offset < sizeof(LogOp)) return Status::kCorrupt;
            LogOp op;
            __builtin_memcpy(&op, payload + offset, sizeof(op));
            offset += sizeof(op);
            const LogOpKind kind = static_cast<LogOpKind>(op.kind);
            const uint32_t bytes = log_op_payload_bytes(kind);
            if (payload_bytes - offset < bytes) return Status::kCorrupt;
            const uint8_t* body = payload + offset;
            offset += bytes;
            const bool data_block = op.target >= superblock_.data_start && op.target < superblock_.block_count;
            switch (kind) {
                case LogOpKind::kInodeImage: {
                    DiskInode image;
                    __builtin_memcpy(&image, body, sizeof(image));
                    if (op.target == kNoInode || op.target >= superblock_.inode_count || !inode_copy_valid(image, op.target))
                        return Status::kCorrupt;
                    if (pass == 1) {
                        inodes_[op.target] = image;
                        flags_[op.target] &= ~kDamaged;
                        mark_inode_dirty(op.target);
                    }
                    break;
                }
                case LogOpKind::kBlockImage: {
                    if (!data_block) return Status::kCorrupt;
                    if (pass == 1) {
                        uint8_t* copy = static_cast<uint8_t*>(platform_.allocate(kBlockSize));
                        if (!copy) return Status::kNoMemory;
                        __builtin_memcpy(copy, body, kBlockSize);
                        if (!dirty_blocks_.insert(op.target, copy)) {
                            platform_.release(copy, kBlockSize);
                            return Status::kNoMemory;
                        }
                    }
                    break;
                }
                case LogOpKind::kAllocate:
                case LogOpKind::kFree:
                    if (!data_block || op.count != 1) return Status::kCorrupt;
                    if (pass == 1) {
                        set_bit(committed_bits_, op.target, kind == LogOpKind::kAllocate);
                        mark_bitmap_dirty(op.target);
                    }
                    break;
                default:
                    return Status::kCorrupt;
            }
        }
    }
    return Status::kOk;
}

Status Volume::replay_log(uint64_t* end_lsn) {
    Buffer record(platform_);
    uint64_t lsn = superblock_.log_tail;
    while (true) {
        LogRecordHeader header;
        Status status = read_record(lsn, superblock_.log_epoch, record, &header);
        if (status == Status::kNotFound || status == Status::kCorrupt) break;  // end of the log
        if (status != Status::kOk) return status;
        status = apply_record(record.data() + sizeof(LogRecordHeader), header.payload_bytes, header.op_count);
        if (status == Status::kNoMemory) return status;
        if (status != Status::kOk) {
            note(LogLevel::kError, "mount: log record at LSN %llu is malformed; the log ends there",
                 static_cast<unsigned long long>(lsn));
            break;
        }
        ++stats_.records_replayed;
        if (header.transaction_id >= superblock_.next_transaction_id) superblock_.next_transaction_id = header.transaction_id + 1;
        lsn += header.block_count;
    }
    if (stats_.records_replayed)
        note(LogLevel::kInfo, "mount: replayed %llu log records", static_cast<unsigned long long>(stats_.records_replayed));
    *end_lsn = lsn;
    return Status::kOk;
}

// Records of the current epoch at or past the end of the log were never committed (their flush
// did not complete). Zero their headers before a new epoch starts, so no later scan (log replay
// or repair) can mistake them for committed data.
Status Volume::erase_stale_records(uint64_t end_lsn) {
    Buffer block(platform_), zero(platform_);
    if (!block.allocate(kBlockSize) || !zero.allocate(kBlockSize)) return Status::kNoMemory;
    bool erased = false;
    for (uint32_t position = 0; position < superblock_.log_blocks; ++position) {
        if (Status status = read_block(superblock_.log_start + position, block.data()); status != Status::kOk) return status;
        LogRecordHeader header;
        __builtin_memcpy(&header, block.data(), sizeof(header));
        if (header.magic != kLogRecordMagic || header.volume_id != superblock_.volume_id ||
            header.epoch != superblock_.log_epoch || header.lsn < end_lsn ||
            header.header_crc != crc32c_with_zero_field(&header, sizeof(header), offsetof(LogRecordHeader, header_crc)))
            continue;
        if (Status status = write_block(superblock_.log_start + position, zero.data()); status != Status::kOk) return status;
        erased = true;
    }
    return erased ? device_.flush() : Status::kOk;
}

// Whether a checksummed inode also makes sense; a hostile image can checksum anything.
bool Volume::validate_inode(uint32_t number, const DiskInode& image) const {
    const NodeType type = static_cast<NodeType>(image.type);
    if (number == kRootDirectory || number == kRegistryRoot) {
        const NodeType expected = number == kRootDirectory ? NodeType::kDirectory : NodeType::kKey;
        if (type != expected || image.parent != kNoInode || image.name_length != 0 || image.size != 0) return false;
    } else if (type == NodeType::kFree) {
        return true;
    } else {
        if (type != NodeType::kDirectory && type != NodeType::kFile && type != NodeType::kKey && type != NodeType::kValue)
            return false;
        if (image.parent == kNoInode || image.parent == number || image.parent >= superblock_.inode_count) return false;
        if (image.name_length == 0 || image.name_length > kMaxNameLength) return false;
        for (uint32_t i = 0; i < image.name_length; ++i)
            if (image.name[i] == '/' || image.name[i] == '\0') return false;
    }
    const bool has_data = type == NodeType::kFile || type == NodeType::kValue;
    if (!has_data && image.size != 0) return false;
    if (image.size > kMaxFileSize) return false;
    const ValueType value_type = static_cast<ValueType>(image.value_type);
    if (type == NodeType::kValue) {
        if (value_type != ValueType::kString && value_type != ValueType::kU32 && value_type != ValueType::kU64 &&
            value_type != ValueType::kBinary)
            return false;
        if ((value_type == ValueType::kU32 && image.size != 4) || (value_type == ValueType::kU64 && image.size != 8)) return false;
    } else if (value_type != ValueType::kNone) {
        return false;
    }
    const uint32_t blocks = blocks_for_size(image.size);
    auto in_data = [&](uint32_t block) { return block >= superblock_.data_start && block < superblock_.block_count; };
    for (uint32_t index = 0; index < kDirectBlocks; ++index) {
        const BlockRef& ref = image.direct[index];
        if (index < blocks ? !in_data(ref.block) : (ref.block != 0 || ref.crc != 0)) return false;
    }
    if (blocks > kDirectBlocks ? !in_data(image.indirect.block) : (image.indirect.block != 0 || image.indirect.crc != 0))
        return false;
    return true;
}

void Volume::validate_inodes() {
    for (uint32_t number = 1; number < superblock_.inode_count; ++number) {
        if (flags_[number] & kDamaged) {
            note(LogLevel::kWarning, "mount: inode %u has no valid copy; offline until repaired", number);
            queue_repair(number);
            continue;
        }
        if (!validate_inode(number, inodes_[number])) {
            note(LogLevel::kWarning, "mount: inode %u has impossible content; taken offline", number);
            flags_[number] |= kInvalid;
        }
    }
}

// The tree is the inodes' parent links; children lists are derived. A node whose parent is
// missing or of the wrong kind, or that sits on a cycle, is an orphan: offline, not linked.
void Volume::rebuild_tree() {
    const uint32_t count = superblock_.inode_count;
    for (uint32_t number = 0; number < count; ++number) {
        first_child_[number] = next_sibling_[number] = kNoInode;
        flags_[number] &= ~kOrphan;
    }
    auto usable = [&](uint32_t number) {
        return (flags_[number] & (kDamaged | kInvalid)) == 0 && static_cast<NodeType>(inodes_[number].type) != NodeType::kFree;
    };
    for (uint32_t number = kFirstFreeInode; number < count; ++number) {
        if (!usable(number)) continue;
        const uint32_t parent = inodes_[number].parent;
        if (usable(parent) && compatible_parent(static_cast<NodeType>(inodes_[number].type), static_cast<NodeType>(inodes_[parent].type)))
            link_child(parent, number);
        else
            flags_[number] |= kOrphan;
    }
    // Reachability from the two roots, breadth first through a queue in a Vector.
    Vector<uint32_t> queue(platform_);
    Vector<uint8_t> reached(platform_);
    if (!reached.resize(count) || !queue.reserve(count)) return;  // without memory, leave links as they are
    for (uint32_t root : {kRootDirectory, kRegistryRoot}) {
        if (!usable(root)) continue;
        reached[root] = 1;
        (void)queue.push_back(root);
    }
    for (size_t head = 0; head < queue.size(); ++head)
        for (uint32_t child = first_child_[queue[head]]; child != kNoInode; child = next_sibling_[child])
            if (!reached[child]) {
                reached[child] = 1;
                (void)queue.push_back(child);
            }
    for (uint32_t number = kFirstFreeInode; number < count; ++number) {
        if (usable(number) && !reached[number] && !(flags_[number] & kOrphan)) {
            note(LogLevel::kWarning, "mount: inode %u is not reachable from a root; offline", number);
            flags_[number] |= kOrphan;
        }
    }
}

// Builds the set of blocks the inodes use. Blocks in use must never be handed out again, whatever
// the bitmap says; a block claimed twice takes the second claimant offline.
Status Volume::reconcile_allocation() {
    Vector<uint8_t> derived(platform_);
    Vector<BlockRef> refs(platform_);
    if (!derived.resize(committed_bits_.size()) || !refs.resize(kMaxFileBlocks)) return Status::kNoMemory;
    for (uint32_t block = 0; block < superblock_.data_start; ++block) set_bit(derived, block, true);
    for (uint32_t number = 1; number < superblock_.inode_count; ++number) {
        if ((flags_[number] & (kDamaged | kInvalid)) || static_cast<NodeType>(inodes_[number].type) == NodeType::kFree) continue;
        const DiskInode& image = inodes_[number];
        const uint32_t blocks = blocks_for_size(image.size);
        for (uint32_t index = 0; index < blocks; ++index) refs[index] = BlockRef{0, 0};
        const Status status = load_refs(image, number, refs);
        if (status == Status::kNoMemory) return status;
        bool cross_linked = false, out_of_range = false;
        auto claim = [&](uint32_t block) {
            if (block == 0) return;  // unknown (unreadable indirect block): the read reports it
            if (block < superblock_.data_start || block >= superblock_.block_count) {
                out_of_range = true;  // only an indirect block's entries can get here unchecked
                return;
            }
            if (bit(derived, block)) cross_linked = true;
            set_bit(derived, block, true);
        };
        for (uint32_t index = 0; index < blocks; ++index) claim(refs[index].block);
        if (blocks > kDirectBlocks) claim(image.indirect.block);
        if (cross_linked || out_of_range) {
            note(LogLevel::kWarning, "mount: inode %u %s; taken offline", number,
                 cross_linked ? "shares blocks with another inode" : "references blocks outside the data area");
            flags_[number] |= kInvalid;
        }
    }
    if (bitmap_lost_) {
        for (size_t i = 0; i < derived.size(); ++i) committed_bits_[i] = derived[i];
        for (uint32_t index = 0; index < superblock_.bitmap_blocks; ++index) dirty_meta_[index] = 1;
    }
    for (size_t i = 0; i < derived.size(); ++i) in_use_bits_[i] = committed_bits_[i] | derived[i];
    return Status::kOk;
}

}  // namespace txfs
