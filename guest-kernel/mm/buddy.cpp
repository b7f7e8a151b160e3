#include "mm/buddy.h"

namespace hvkvm::guest::mm {
namespace {

constexpr uint64_t kMaxBlockBytes = kPageSize << kMaxOrder;

uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }

}  // namespace

uint64_t BuddyAllocator::metadata_bytes(uint64_t base, uint64_t end) {
    return (end - align_down(base, kMaxBlockBytes)) >> kPageShift;
}

void BuddyAllocator::init(uint64_t base, uint64_t end, uint8_t* metadata) {
    origin_ = align_down(base, kMaxBlockBytes);
    base_ = base;
    end_ = end;
    metadata_ = metadata;
    for (uint64_t i = 0, count = metadata_bytes(base, end); i < count; ++i) metadata_[i] = 0;
    for (auto& list : free_lists_) list = nullptr;
    for (auto& count : free_block_count_) count = 0;
    free_pages_ = 0;
    managed_pages_ = 0;
}

void BuddyAllocator::add_free_range(uint64_t start, uint64_t end) {
    if (start < base_) start = base_;
    if (end > end_) end = end_;
    while (start < end) {
        // The largest block that starts here (aligned relative to origin) and fits before `end`.
        uint32_t order = kMaxOrder;
        while (order > 0 && (((start - origin_) & ((kPageSize << order) - 1)) != 0 || start + (kPageSize << order) > end))
            --order;
        metadata_[page_index(start)] = static_cast<uint8_t>(kAllocatedHead | order);
        managed_pages_ += uint64_t{1} << order;
        free(start, order);  // coalesces with neighbours added earlier
        start += kPageSize << order;
    }
}

void BuddyAllocator::push_free(uint64_t address, uint32_t order) {
    auto* block = reinterpret_cast<FreeBlock*>(address);
    block->previous = nullptr;
    block->next = free_lists_[order];
    if (block->next) block->next->previous = block;
    free_lists_[order] = block;
    metadata_[page_index(address)] = static_cast<uint8_t>(kFreeHead | order);
    ++free_block_count_[order];
    free_pages_ += uint64_t{1} << order;
}

void BuddyAllocator::remove_free(uint64_t address, uint32_t order) {
    auto* block = reinterpret_cast<FreeBlock*>(address);
    if (block->previous) block->previous->next = block->next;
    else free_lists_[order] = block->next;
    if (block->next) block->next->previous = block->previous;
    metadata_[page_index(address)] = 0;
    --free_block_count_[order];
    free_pages_ -= uint64_t{1} << order;
}

uint64_t BuddyAllocator::pop_free(uint32_t order) {
    FreeBlock* block = free_lists_[order];
    if (!block) return 0;
    const auto address = reinterpret_cast<uint64_t>(block);
    remove_free(address, order);
    return address;
}

uint64_t BuddyAllocator::allocate(uint32_t order) {
    if (order > kMaxOrder) return 0;
    uint32_t found = order;
    while (found <= kMaxOrder && !free_lists_[found]) ++found;
    if (found > kMaxOrder) return 0;
    const uint64_t address = pop_free(found);
    // Split: keep the lower half, return upper halves to the free lists.
    while (found > order) {
        --found;
        push_free(address + (kPageSize << found), found);
    }
    metadata_[page_index(address)] = static_cast<uint8_t>(kAllocatedHead | order);
    return address;
}

FreeResult BuddyAllocator::free(uint64_t address, uint32_t order) {
    if (order > kMaxOrder || !block_in_range(address, order) || ((address - origin_) & ((kPageSize << order) - 1)))
        return FreeResult::kOutOfRange;
    const uint8_t meta = metadata_[page_index(address)];
    if (!(meta & kAllocatedHead) || (meta & kCached)) return FreeResult::kNotAllocated;
    if ((meta & kOrderMask) != order) return FreeResult::kWrongOrder;
    metadata_[page_index(address)] = 0;

    // Coalesce while the buddy is a free block of the same order.
    while (order < kMaxOrder) {
        const uint64_t buddy = origin_ + ((address - origin_) ^ (kPageSize << order));
        if (!block_in_range(buddy, order) || metadata_[page_index(buddy)] != (kFreeHead | order)) break;
        remove_free(buddy, order);
        if (buddy < address) address = buddy;
        ++order;
    }
    push_free(address, order);
    return FreeResult::kOk;
}

int BuddyAllocator::allocated_order(uint64_t address) const {
    if (!contains(address) || (address & (kPageSize - 1))) return -1;
    const uint8_t meta = metadata_[page_index(address)];
    return (meta & kAllocatedHead) && !(meta & kCached) ? (meta & kOrderMask) : -1;
}

bool BuddyAllocator::mark_cached(uint64_t address) {
    if (!contains(address) || (address & (kPageSize - 1))) return false;
    uint8_t& meta = metadata_[page_index(address)];
    if (meta != kAllocatedHead) return false;  // order 0, not cached
    meta = kAllocatedHead | kCached;
    return true;
}

bool BuddyAllocator::unmark_cached(uint64_t address) {
    if (!contains(address) || (address & (kPageSize - 1))) return false;
    uint8_t& meta = metadata_[page_index(address)];
    if (meta != (kAllocatedHead | kCached)) return false;
    meta = kAllocatedHead;
    return true;
}

bool BuddyAllocator::check_consistency() const {
    uint64_t pages = 0;
    for (uint32_t order = 0; order <= kMaxOrder; ++order) {
        uint64_t blocks = 0;
        const FreeBlock* previous = nullptr;
        for (const FreeBlock* block = free_lists_[order]; block; block = block->next) {
            const auto address = reinterpret_cast<uint64_t>(block);
            if (block->previous != previous || !block_in_range(address, order)) return false;
            if (metadata_[page_index(address)] != (kFreeHead | order)) return false;
            previous = block;
            ++blocks;
        }
        if (blocks != free_block_count_[order]) return false;
        pages += blocks << order;
    }
    return pages == free_pages_;
}

}  // namespace hvkvm::guest::mm
