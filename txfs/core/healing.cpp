// Self-healing. A checksum mismatch takes only the object that owns the block offline and queues
// it; the repair worker looks for an intact copy and, if it finds one, rewrites the damaged block
// and brings the object back. Every repair, and every failure to repair, is logged.
//
// Where intact copies come from:
//   - inode table and bitmap: the mirror copy (chosen at mount and rewritten by the checkpoint)
//   - data, value and indirect blocks: the log. A record holds the full image of every block it
//     wrote, and records stay in the circular log area until overwritten, so the newest image of
//     a block whose checksum matches the reference in its inode is the block's committed content.
//   - an inode with no valid copy: its newest image in the log. The log is overwritten oldest
//     first, so if any record holding the inode survives, the newest one is its last change.
#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"

namespace txfs {

void Volume::queue_repair(uint32_t inode) {
    if (flags_[inode] & kRepairQueued) return;
    if (!repair_queue_.push_back(inode)) return;  // retried when the object is next read
    flags_[inode] |= kRepairQueued;
    changed_->notify_all();
}

void Volume::report_corruption(uint32_t inode, const char* what, uint32_t block) {
    ++stats_.corruptions_detected;
    if (!(flags_[inode] & kDataCorrupt))
        note(LogLevel::kWarning, "corruption: inode %u (%.*s): %s at block %u; object taken offline", inode,
             static_cast<int>(inodes_[inode].name_length), inodes_[inode].name, what, block);
    flags_[inode] |= kDataCorrupt;
    queue_repair(inode);
}

void Volume::repair_worker_entry(void* volume) { static_cast<Volume*>(volume)->repair_worker(); }

// Takes queued objects one at a time and repairs them (mutex held).
void Volume::repair_queued() {
    while (!repair_queue_.empty()) {
        const uint32_t inode = repair_queue_[0];
        repair_queue_.erase_unordered(0);
        repairing_ = true;
        const bool repaired = (flags_[inode] & kDamaged) ? repair_inode(inode) : repair_data(inode);
        ++(repaired ? stats_.repairs_succeeded : stats_.repairs_failed);
        flags_[inode] &= ~kRepairQueued;
        repairing_ = false;
        changed_->notify_all();
    }
}

void Volume::repair_worker() {
    MutexGuard guard(*mutex_);
    while (true) {
        while (!stopping_ && repair_queue_.empty()) changed_->wait(*mutex_);
        if (stopping_) return;
        repair_queued();
    }
}

void Volume::repair_now() {
    MutexGuard guard(*mutex_);
    if (!options_.read_only) repair_queued();
}

void Volume::wait_for_repairs() {
    MutexGuard guard(*mutex_);
    while (worker_ && (!repair_queue_.empty() || repairing_)) changed_->wait(*mutex_);
}

// Scans every record physically present in the log area (committed ones only: below the durable
// LSN) for the newest image of `target`. For blocks the image must match the expected checksum.
bool Volume::find_in_log(LogOpKind kind, uint32_t target, const BlockRef* expected, uint8_t* out) {
    Buffer probe(platform_), record(platform_);
    if (!probe.allocate(kBlockSize)) return false;
    uint64_t best_lsn = 0;
    bool found = false;
    for (uint32_t position = 0; position < superblock_.log_blocks; ++position) {
        if (read_block(superblock_.log_start + position, probe.data()) != Status::kOk) continue;
        LogRecordHeader peek;
        __builtin_memcpy(&peek, probe.data(), sizeof(peek));
        if (peek.magic != kLogRecordMagic || peek.lsn % superblock_.log_blocks != position || peek.lsn >= durable_lsn_) continue;
        LogRecordHeader header;
        if (read_record(peek.lsn, 0, record, &header) != Status::kOk) continue;
        if (found && header.lsn < best_lsn) continue;
        const uint8_t* payload = record.data() + sizeof(LogRecordHeader);
        uint32_t offset = 0;
        for (uint32_t index = 0; index < header.op_count && header.payload_bytes - offset >= sizeof(LogOp); ++index) {
            LogOp op;
            __builtin_memcpy(&op, payload + offset, sizeof(op));
            offset += sizeof(op);
            const uint32_t bytes = log_op_payload_bytes(static_cast<LogOpKind>(op.kind));
            if (header.payload_bytes - offset < bytes) break;
            const uint8_t* body = payload + offset;
            offset += bytes;
            if (static_cast<LogOpKind>(op.kind) != kind || op.target != target) continue;
            if (kind == LogOpKind::kBlockImage && crc32c(body, kBlockSize) != expected->crc) continue;
            if (kind == LogOpKind::kInodeImage) {
                DiskInode image;
                __builtin_memcpy(&image, body, sizeof(image));
                if (image.number != target ||
                    image.crc != crc32c_with_zero_field(&image, sizeof(image), offsetof(DiskInode, crc)))
                    continue;
            }
            __builtin_memcpy(out, body, bytes);
            best_lsn = header.lsn;
            found = true;
        }
    }
    return found;
}

bool Volume::repair_inode(uint32_t inode) {
    DiskInode image;
    if (!find_in_log(LogOpKind::kInodeImage, inode, nullptr, reinterpret_cast<uint8_t*>(&image)) ||
        !validate_inode(inode, image)) {
        note(LogLevel::kError, "repair: inode %u: no intact copy in the mirror or the log; stays offline", inode);
        return false;
    }
    inodes_[inode] = image;
    flags_[inode] &= ~kDamaged;
    mark_inode_dirty(inode);
    rebuild_tree();
    note(LogLevel::kInfo, "repair: inode %u (%.*s) restored from the log; back online", inode,
         static_cast<int>(image.name_length), image.name);
    return true;
}

// Verifies every block of the inode and rewrites each damaged one from the log.
bool Volume::repair_data(uint32_t inode) {
    const DiskInode& image = inodes_[inode];
    if (static_cast<NodeType>(image.type) == NodeType::kFree) {
        flags_[inode] &= ~kDataCorrupt;
        return true;
    }
    Buffer block(platform_);
    Vector<BlockRef> refs(platform_);
    if (!block.allocate(kBlockSize) || !refs.resize(kMaxFileBlocks)) return false;
    const uint32_t blocks = blocks_for_size(image.size);
    uint32_t unrepaired = 0, first_unrepaired = 0;
    auto heal = [&](const BlockRef& ref) {
        if (read_committed_block(ref.block, block.data()) == Status::kOk && crc32c(block.data(), kBlockSize) == ref.crc) return true;
        if (find_in_log(LogOpKind::kBlockImage, ref.block, &ref, block.data()) &&
            write_block(ref.block, block.data()) == Status::kOk && device_.flush() == Status::kOk) {
            note(LogLevel::kInfo, "repair: inode %u (%.*s): block %u rewritten from the log", inode,
                 static_cast<int>(image.name_length), image.name, ref.block);
            return true;
        }
        if (unrepaired++ == 0) first_unrepaired = ref.block;
        return false;
    };
    const bool indirect_ok = blocks <= kDirectBlocks || heal(image.indirect);
    if (indirect_ok) {
        for (uint32_t index = 0; index < blocks; ++index) refs[index] = BlockRef{0, 0};
        if (load_refs(image, inode, refs) == Status::kOk)
            for (uint32_t index = 0; index < blocks; ++index) heal(refs[index]);
    }
    if (unrepaired) {
        note(LogLevel::kError, "repair: inode %u (%.*s): %u block(s) have no intact copy (first: block %u); stays offline",
             inode, static_cast<int>(image.name_length), image.name, unrepaired, first_unrepaired);
        return false;
    }
    flags_[inode] &= ~kDataCorrupt;
    note(LogLevel::kInfo, "repair: inode %u (%.*s) verified; back online", inode, static_cast<int>(image.name_length),
         image.name);
    return true;
}

}  // namespace txfs
