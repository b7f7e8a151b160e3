// Binary buddy allocator over one contiguous range of physical memory.
//
// A plain data structure: no locking and no kernel services, so the host's unit tests drive it
// directly (there, "physical addresses" are addresses in a host buffer). The kernel wraps it in
// zones with locks and per-CPU caches (page_allocator.h).
//
// Free blocks are linked through their own first bytes (memory is identity-mapped), so the only
// side storage is one metadata byte per page, supplied by the caller. Blocks are naturally
// aligned to their size relative to `origin`, the range start rounded down to the largest block.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest::mm {

inline constexpr uint64_t kPageSize = abi::kPageSize;
inline constexpr uint32_t kPageShift = 12;
inline constexpr uint32_t kMaxOrder = 10;  // largest block: 2^10 pages = 4 MiB
inline constexpr uint32_t kOrderCount = kMaxOrder + 1;

enum class FreeResult {
    kOk,
    kOutOfRange,    // the address is not in this allocator's range, or not block-aligned
    kNotAllocated,  // the block is free already (double free) or is not the start of a block
    kWrongOrder,    // the block was allocated with a different order
};

class BuddyAllocator {
public:
    // Bytes of metadata needed for [base, end).
    static uint64_t metadata_bytes(uint64_t base, uint64_t end);

    // Takes [base, end) (page-aligned) with all pages initially allocated (unavailable);
    // `metadata` must hold metadata_bytes(base, end) bytes. Memory is handed over with
    // add_free_range().
    void init(uint64_t base, uint64_t end, uint8_t* metadata);

    // Makes a page-aligned subrange available, as the largest aligned blocks that fit.
    void add_free_range(uint64_t start, uint64_t end);

    // Returns the physical address of a free block of 2^order pages, or 0 if none is left.
    uint64_t allocate(uint32_t order);
    FreeResult free(uint64_t address, uint32_t order);

    // The order a live allocation was made with, or -1 if `address` does not start one (or is a
    // page parked in a per-CPU cache).
    int allocated_order(uint64_t address) const;

    // Per-CPU page caches park allocated single pages: marking them lets a double free of a
    // cached page be caught. mark_cached fails unless the page is an allocated single page;
    // unmark_cached fails unless it is marked. Only the page's owner calls these (no lock).
    bool mark_cached(uint64_t address);
    bool unmark_cached(uint64_t address);

    bool contains(uint64_t address) const { return address >= base_ && address < end_; }
    uint64_t base() const { return base_; }
    uint64_t end() const { return end_; }
    uint64_t free_pages() const { return free_pages_; }
    uint64_t managed_pages() const { return managed_pages_; }
    uint64_t free_blocks(uint32_t order) const { return free_block_count_[order]; }

    // Walks every free list and checks it against the metadata and counters; returns false on
    // any inconsistency (for tests and debugging).
    bool check_consistency() const;

private:
    struct FreeBlock {
        FreeBlock* next;
        FreeBlock* previous;
    };

    // Metadata byte of a page: kFreeHead | order for the first page of a free block,
    // kAllocatedHead | order for the first page of an allocated block (plus kCached while parked
    // in a per-CPU cache), 0 for any other page.
    static constexpr uint8_t kFreeHead = 0x80;
    static constexpr uint8_t kAllocatedHead = 0x40;
    static constexpr uint8_t kCached = 0x20;
    static constexpr uint8_t kOrderMask = 0x0f;

    uint64_t page_index(uint64_t address) const { return (address - origin_) >> kPageShift; }
    uint64_t address_of(uint64_t index) const { return origin_ + (index << kPageShift); }
    bool block_in_range(uint64_t address, uint32_t order) const {
        return address >= base_ && address + (kPageSize << order) <= end_;
    }
    void push_free(uint64_t address, uint32_t order);
    void remove_free(uint64_t address, uint32_t order);
    uint64_t pop_free(uint32_t order);

    uint64_t origin_ = 0, base_ = 0, end_ = 0;
    uint8_t* metadata_ = nullptr;  // indexed by page_index()
    FreeBlock* free_lists_[kOrderCount] = {};
    uint64_t free_block_count_[kOrderCount] = {};
    uint64_t free_pages_ = 0;
    uint64_t managed_pages_ = 0;
};

}  // namespace hvkvm::guest::mm
