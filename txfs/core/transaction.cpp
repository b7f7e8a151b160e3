// Commit: turn a transaction's private changes into one log record, make it durable (sharing the
// flush with concurrent committers), then install the changes so other readers see them.
//
// Order per commit (all under the volume mutex except the flush):
//   1. plan: allocate blocks, compute checksums and the final inode images, encode the record
//   2. make room in the log (checkpoint if needed), write the record at log_head_
//   3. wait until a flush covers the record (become the flush leader if none is running)
//   4. install into the committed state, release the object locks
// A crash before 3 completes loses the whole transaction; after, recovery replays all of it.
#include "core/crc32c.h"
#include "core/transaction.h"
#include "core/volume.h"

namespace txfs {
namespace {

const uint8_t kZeroBlock[kBlockSize] = {};

bool append_op(CommitPlan& plan, LogOpKind kind, uint32_t target, uint32_t count, const void* payload) {
    const LogOp op{static_cast<uint16_t>(kind), 0, target, count, 0};
    if (!plan.record.append(reinterpret_cast<const uint8_t*>(&op), sizeof(op))) return false;
    const uint32_t payload_bytes = log_op_payload_bytes(kind);
    if (payload_bytes && !plan.record.append(static_cast<const uint8_t*>(payload), payload_bytes)) return false;
    ++plan.op_count;
    return true;
}

}  // namespace

Status Volume::begin(Transaction** out) {
    mutex_->lock();
    const uint64_t id = next_transaction_id_++;
    mutex_->unlock();
    *out = create_object<Transaction>(platform_, platform_, id);
    return *out ? Status::kOk : Status::kNoMemory;
}

void Volume::rollback(Transaction* tx) {
    if (!tx) return;
    mutex_->lock();
    ++stats_.rollbacks;
    release_transaction(tx, false);
    mutex_->unlock();
}

// Frees the transaction and releases its locks and reserved inodes (mutex held).
void Volume::release_transaction(Transaction* tx, bool committed) {
    for (TxObject* object : tx->objects) {
        if (object->created && (!committed || object->deleted)) flags_[object->number] &= ~kReserved;
        for (TxBlock& block : object->blocks)
            if (block.data) platform_.release(block.data, kBlockSize);
        destroy_object(platform_, object);
    }
    for (uint32_t inode : tx->locks) owner_[inode] = 0;
    destroy_object(platform_, tx);
    changed_->notify_all();
}

Status Volume::allocate_block(CommitPlan& plan, uint32_t* block) {
    const uint32_t first = superblock_.data_start;
    const uint32_t count = static_cast<uint32_t>(superblock_.block_count) - first;
    if (allocation_cursor_ < first || allocation_cursor_ >= superblock_.block_count) allocation_cursor_ = first;
    for (uint32_t step = 0; step < count; ++step) {
        const uint32_t candidate = allocation_cursor_;
        allocation_cursor_ = candidate + 1 >= superblock_.block_count ? first : candidate + 1;
        if (bit(in_use_bits_, candidate)) continue;
        if (!plan.allocated.push_back(candidate)) return Status::kNoMemory;
        set_bit(in_use_bits_, candidate, true);
        *block = candidate;
        return Status::kOk;
    }
    return Status::kNoSpace;
}

// Adds one object's changes to the plan and sets object->image to its final committed form.
Status Volume::plan_object(Transaction* tx, TxObject* object, CommitPlan& plan) {
    const DiskInode& committed = inodes_[object->number];
    DiskInode& image = object->image;
    const uint32_t old_blocks = object->created ? 0 : blocks_for_size(committed.size);
    if (object->deleted && object->created) return Status::kOk;  // never existed outside tx

    Vector<BlockRef> refs(platform_);
    const uint32_t new_blocks = object->deleted ? 0 : blocks_for_size(image.size);
    if (!refs.resize(old_blocks > new_blocks ? old_blocks : new_blocks)) return Status::kNoMemory;
    if (!object->created) {
        // An unreadable indirect block (offline object being deleted) leaves those blocks unknown:
        // they stay allocated and fsck reports them, rather than risk freeing live blocks.
        Status status = load_refs(committed, object->number, refs);
        if (status == Status::kNoMemory) return status;
    }

    for (uint32_t index = 0; index < new_blocks; ++index) {
        TxBlock* own = object->find_block(index);
        const uint64_t start = uint64_t{index} * kBlockSize;
        const bool committed_content_valid = index < old_blocks && start + kBlockSize <= object->zero_from;
        if (!own && committed_content_valid) continue;  // untouched: keep the committed block
        uint8_t* content = own ? own->data : nullptr;
        if (!content) {
            content = static_cast<uint8_t*>(platform_.allocate(kBlockSize));
            if (!content) return Status::kNoMemory;
            __builtin_memset(content, 0, kBlockSize);
        } else {
            own->data = nullptr;  // the plan owns it now
        }
        if (!plan.blocks.push_back(PendingBlock{0, content})) {
            platform_.release(content, kBlockSize);
            return Status::kNoMemory;
        }
        uint32_t block = index < old_blocks ? refs[index].block : 0;
        if (block == 0)
            if (Status status = allocate_block(plan, &block); status != Status::kOk) return status;
        plan.blocks.back().block = block;
        refs[index] = BlockRef{block, crc32c(content, kBlockSize)};
        if (!append_op(plan, LogOpKind::kBlockImage, block, 1, content)) return Status::kNoMemory;
    }
    for (uint32_t index = new_blocks; index < old_blocks; ++index)
        if (refs[index].block && !plan.freed.push_back(refs[index].block)) return Status::kNoMemory;

    BlockRef indirect{0, 0};
    const bool had_indirect = !object->created && committed.indirect.block != 0;
    if (new_blocks > kDirectBlocks) {
        uint8_t* content = static_cast<uint8_t*>(platform_.allocate(kBlockSize));
        if (!content) return Status::kNoMemory;
        __builtin_memset(content, 0, kBlockSize);
        __builtin_memcpy(content, &refs[kDirectBlocks], (new_blocks - kDirectBlocks) * sizeof(BlockRef));
        const uint32_t crc = crc32c(content, kBlockSize);
        if (had_indirect && crc == committed.indirect.crc) {
            platform_.release(content, kBlockSize);
            indirect = committed.indirect;
        } else {
            if (!plan.blocks.push_back(PendingBlock{0, content})) {
                platform_.release(content, kBlockSize);
                return Status::kNoMemory;
            }
            uint32_t block = had_indirect ? committed.indirect.block : 0;
            if (block == 0)
                if (Status status = allocate_block(plan, &block); status != Status::kOk) return status;
            plan.blocks.back().block = block;
            indirect = BlockRef{block, crc};
            if (!append_op(plan, LogOpKind::kBlockImage, block, 1, content)) return Status::kNoMemory;
        }
    } else if (had_indirect && !plan.freed.push_back(committed.indirect.block)) {
        return Status::kNoMemory;
    }

    if (object->deleted) {
        const uint32_t generation = committed.generation + 1;
        __builtin_memset(&image, 0, sizeof(image));
        image.generation = generation;
        image.type = static_cast<uint16_t>(NodeType::kFree);
    } else {
        for (uint32_t index = 0; index < kDirectBlocks; ++index)
            image.direct[index] = index < new_blocks ? refs[index] : BlockRef{0, 0};
        image.indirect = indirect;
    }
    image.number = object->number;
    image.transaction_id = tx->id;
    image.crc = crc32c_with_zero_field(&image, sizeof(image), offsetof(DiskInode, crc));
    if (!append_op(plan, LogOpKind::kInodeImage, object->number, 1, &image)) return Status::kNoMemory;
    return Status::kOk;
}

Status Volume::plan_commit(Transaction* tx, CommitPlan& plan) {
    if (!plan.record.resize(sizeof(LogRecordHeader))) return Status::kNoMemory;
    for (TxObject* object : tx->objects)
        if (Status status = plan_object(tx, object, plan); status != Status::kOk) return status;
    for (uint32_t block : plan.allocated)
        if (!append_op(plan, LogOpKind::kAllocate, block, 1, nullptr)) return Status::kNoMemory;
    for (uint32_t block : plan.freed)
        if (!append_op(plan, LogOpKind::kFree, block, 1, nullptr)) return Status::kNoMemory;
    // Pad to whole blocks; the header is filled in once the record's LSN is known.
    const size_t blocks = (plan.record.size() + kBlockSize - 1) / kBlockSize;
    if (blocks >= superblock_.log_blocks) return Status::kTooLarge;
    if (!plan.blocks.empty() && !dirty_blocks_.reserve(plan.blocks.size())) return Status::kNoMemory;
    return plan.record.resize(blocks * kBlockSize) ? Status::kOk : Status::kNoMemory;
}

// Makes the committed state match the plan (mutex held; the record is durable).
void Volume::install(Transaction* tx, CommitPlan& plan) {
    for (TxObject* object : tx->objects) {
        const uint32_t inode = object->number;
        if (object->created && object->deleted) continue;
        if (object->deleted) unlink_child(inodes_[inode].parent, inode);
        inodes_[inode] = object->image;
        mark_inode_dirty(inode);
        if (object->created) link_child(object->image.parent, inode);
        if (object->deleted) flags_[inode] = 0;
        flags_[inode] &= ~kReserved;
    }
    for (PendingBlock& pending : plan.blocks) {
        (void)dirty_blocks_.insert(pending.block, pending.data);  // room reserved by plan_commit
        pending.data = nullptr;
    }
    for (uint32_t block : plan.allocated) {
        set_bit(committed_bits_, block, true);
        mark_bitmap_dirty(block);
    }
    for (uint32_t block : plan.freed) {
        set_bit(committed_bits_, block, false);
        set_bit(in_use_bits_, block, false);
        mark_bitmap_dirty(block);
    }
    plan.allocated.clear();
}

Status Volume::commit(Transaction* tx) {
    if (!tx) return Status::kInvalidArgument;
    MutexGuard guard(*mutex_);
    if (options_.read_only || failed_) {
        release_transaction(tx, false);
        return options_.read_only ? Status::kReadOnly : Status::kIoError;
    }
    while (checkpointing_) changed_->wait(*mutex_);

    CommitPlan plan(platform_);
    Status status = plan_commit(tx, plan);
    uint32_t blocks = static_cast<uint32_t>(plan.record.size() / kBlockSize);
    while (status == Status::kOk && log_free_blocks() < blocks) status = checkpoint_locked();
    if (status == Status::kOk && plan.op_count > 0) {
        LogRecordHeader header{};
        header.magic = kLogRecordMagic;
        header.volume_id = superblock_.volume_id;
        header.lsn = log_head_;
        header.epoch = superblock_.log_epoch;
        header.transaction_id = tx->id;
        header.block_count = blocks;
        header.payload_bytes = static_cast<uint32_t>(plan.record.size() - sizeof(header));
        header.op_count = plan.op_count;
        header.payload_crc = crc32c(plan.record.data() + sizeof(header), header.payload_bytes);
        header.header_crc = crc32c_with_zero_field(&header, sizeof(header), offsetof(LogRecordHeader, header_crc));
        __builtin_memcpy(plan.record.data(), &header, sizeof(header));
        status = write_record(log_head_, plan.record.data(), blocks);
        if (status == Status::kOk) {
            log_head_ += blocks;
            ++in_flight_;
            status = wait_for_flush(log_head_);
            if (status == Status::kOk) {
                install(tx, plan);
                ++stats_.commits;
            }
            --in_flight_;
        } else {
            failed_ = true;
        }
    }
    // Whatever was not installed goes back: reserved blocks and block images.
    for (uint32_t block : plan.allocated) set_bit(in_use_bits_, block, false);
    for (PendingBlock& pending : plan.blocks)
        if (pending.data) platform_.release(pending.data, kBlockSize);
    release_transaction(tx, status == Status::kOk);
    if (status == Status::kOk && log_used_blocks_locked() * 100 >= uint64_t{superblock_.log_blocks} * options_.checkpoint_percent)
        status = checkpoint_locked();
    return status;
}

}  // namespace txfs
