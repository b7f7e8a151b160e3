// A transaction's private state (internal to the core): its copies of the objects it changed,
// the blocks it wrote, and the locks it holds. Nobody else sees any of it before commit.
#pragma once

#include <stdint.h>

#include "core/format.h"
#include "core/memory.h"

namespace txfs {

class Volume;

struct TxBlock {
    uint32_t index;  // block index within the object
    uint8_t* data;   // kBlockSize bytes owned by the transaction
};

struct TxObject {
    explicit TxObject(Platform& platform) : blocks(platform) {}
    uint32_t number = 0;
    bool created = false;
    bool deleted = false;
    // Bytes at or past this offset no longer come from the committed blocks (set by truncation).
    uint64_t zero_from = kMaxFileSize;
    DiskInode image{};  // the object as this transaction sees it (pointers stay the committed ones)
    Vector<TxBlock> blocks;

    TxBlock* find_block(uint32_t index) {
        for (TxBlock& block : blocks)
            if (block.index == index) return &block;
        return nullptr;
    }
};

class Transaction {
public:
    Transaction(Platform& platform, uint64_t transaction_id) : id(transaction_id), objects(platform), locks(platform) {}
    TxObject* find(uint32_t inode) {
        for (TxObject* object : objects)
            if (object->number == inode) return object;
        return nullptr;
    }

    const uint64_t id;
    Vector<TxObject*> objects;
    Vector<uint32_t> locks;  // inodes whose owner_ is this transaction
};

// What a commit will do, computed under the volume lock before the record is written.
struct PendingBlock {
    uint32_t block;
    uint8_t* data;  // owned by the plan until installed into the block cache
};
struct CommitPlan {
    explicit CommitPlan(Platform& platform) : record(platform), blocks(platform), allocated(platform), freed(platform) {}
    Vector<uint8_t> record;  // header space, then the op stream
    Vector<PendingBlock> blocks;
    Vector<uint32_t> allocated;
    Vector<uint32_t> freed;
    uint32_t op_count = 0;
};

inline uint32_t blocks_for_size(uint64_t size) { return static_cast<uint32_t>((size + kBlockSize - 1) / kBlockSize); }

}  // namespace txfs
