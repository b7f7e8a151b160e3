// The images of blocks that are committed (in the log) but not yet written home by a checkpoint:
// an open-addressing hash map from block number to an owned 4 KiB buffer. Block 0 (a
// superblock) is never cached, so 0 marks an empty slot. Emptied only as a whole, at checkpoint.
#pragma once

#include <stdint.h>

#include "core/format.h"
#include "core/memory.h"

namespace txfs {

class BlockCache {
public:
    explicit BlockCache(Platform& platform) : platform_(platform), slots_(platform) {}
    ~BlockCache() { clear(); }
    BlockCache(const BlockCache&) = delete;
    BlockCache& operator=(const BlockCache&) = delete;

    size_t size() const { return used_; }

    uint8_t* find(uint32_t block) const {
        if (slots_.empty()) return nullptr;
        for (size_t i = hash(block);; i = (i + 1) & mask()) {
            if (slots_[i].block == block) return slots_[i].data;
            if (slots_[i].block == 0) return nullptr;
        }
    }

    // Makes room so that `more` new blocks can be inserted without allocating.
    [[nodiscard]] bool reserve(size_t more) {
        while ((used_ + more) * 2 > slots_.size())
            if (!grow()) return false;
        return true;
    }

    // Takes ownership of `data` (a kBlockSize buffer from the Platform), replacing any older image.
    [[nodiscard]] bool insert(uint32_t block, uint8_t* data) {
        if ((used_ + 1) * 2 > slots_.size() && !grow()) return false;
        Slot& slot = locate(block);
        if (slot.block == block) {
            platform_.release(slot.data, kBlockSize);
        } else {
            slot.block = block;
            ++used_;
        }
        slot.data = data;
        return true;
    }

    template <typename Visit>
    void for_each(Visit&& visit) const {
        for (const Slot& slot : slots_)
            if (slot.block) visit(slot.block, static_cast<const uint8_t*>(slot.data));
    }

    void clear() {
        for (Slot& slot : slots_)
            if (slot.block) platform_.release(slot.data, kBlockSize);
        slots_.reset();
        used_ = 0;
    }

private:
    struct Slot {
        uint32_t block;
        uint8_t* data;
    };

    size_t mask() const { return slots_.size() - 1; }
    size_t hash(uint32_t block) const { return (block * 0x9e3779b1u) & mask(); }

    Slot& locate(uint32_t block) {
        size_t i = hash(block);
        while (slots_[i].block != 0 && slots_[i].block != block) i = (i + 1) & mask();
        return slots_[i];
    }

    bool grow() {
        const size_t capacity = slots_.empty() ? 64 : slots_.size() * 2;
        Vector<Slot> previous(platform_);
        if (!previous.resize(slots_.size())) return false;
        for (size_t i = 0; i < slots_.size(); ++i) previous[i] = slots_[i];
        if (!slots_.resize(capacity)) return false;
        for (Slot& slot : slots_) slot = Slot{0, nullptr};
        for (const Slot& slot : previous)
            if (slot.block) locate(slot.block) = slot;
        return true;
    }

    Platform& platform_;
    Vector<Slot> slots_;
    size_t used_ = 0;
};

}  // namespace txfs
