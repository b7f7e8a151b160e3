// The guest's buddy allocator, driven on the host over a buffer whose addresses stand in for
// physical addresses (the guest is identity-mapped, so the allocator links free blocks in place).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <map>
#include <random>
#include <vector>

#include "mm/buddy.h"

using namespace hvkvm::guest::mm;

namespace {

constexpr uint64_t kMaxBlockBytes = kPageSize << kMaxOrder;

// An arena aligned to the largest block, with `offset_pages` of slack before the managed range so
// that the range does not start on a max-order boundary.
struct Arena {
    explicit Arena(uint64_t pages, uint64_t offset_pages = 0) {
        const uint64_t bytes = (pages + offset_pages) * kPageSize + kMaxBlockBytes;
        memory = static_cast<uint8_t*>(std::aligned_alloc(kMaxBlockBytes, (bytes + kMaxBlockBytes - 1) / kMaxBlockBytes * kMaxBlockBytes));
        base = reinterpret_cast<uint64_t>(memory) + offset_pages * kPageSize;
        end = base + pages * kPageSize;
        metadata.resize(BuddyAllocator::metadata_bytes(base, end));
        buddy.init(base, end, metadata.data());
    }
    ~Arena() { std::free(memory); }
    uint8_t* memory;
    uint64_t base, end;
    std::vector<uint8_t> metadata;
    BuddyAllocator buddy;
};

}  // namespace

TEST_CASE("a fresh range is split into maximal aligned blocks", "[buddy]") {
    Arena arena(3 * 1024 + 5);  // 3 max-order blocks, then 4 + 1 pages
    arena.buddy.add_free_range(arena.base, arena.end);
    CHECK(arena.buddy.free_pages() == 3 * 1024 + 5);
    CHECK(arena.buddy.managed_pages() == 3 * 1024 + 5);
    CHECK(arena.buddy.free_blocks(kMaxOrder) == 3);
    CHECK(arena.buddy.free_blocks(2) == 1);
    CHECK(arena.buddy.free_blocks(0) == 1);
    CHECK(arena.buddy.check_consistency());
}

TEST_CASE("allocations are naturally aligned and split larger blocks", "[buddy]") {
    Arena arena(1024);
    arena.buddy.add_free_range(arena.base, arena.end);
    const uint64_t page = arena.buddy.allocate(0);
    REQUIRE(page == arena.base);
    CHECK(arena.buddy.allocated_order(page) == 0);
    for (uint32_t order = 0; order < kMaxOrder; ++order) CHECK(arena.buddy.free_blocks(order) == 1);
    const uint64_t block = arena.buddy.allocate(5);
    CHECK((block - arena.base) % (kPageSize << 5) == 0);
    CHECK(arena.buddy.free_pages() == 1024 - 1 - 32);
    CHECK(arena.buddy.free(page, 0) == FreeResult::kOk);
    CHECK(arena.buddy.free(block, 5) == FreeResult::kOk);
    CHECK(arena.buddy.free_blocks(kMaxOrder) == 1);  // fully coalesced
    CHECK(arena.buddy.check_consistency());
}

TEST_CASE("bad frees are refused, not corrupting", "[buddy]") {
    Arena arena(1024);
    arena.buddy.add_free_range(arena.base, arena.end);
    const uint64_t block = arena.buddy.allocate(3);
    CHECK(arena.buddy.free(block, 2) == FreeResult::kWrongOrder);
    CHECK(arena.buddy.free(block + kPageSize, 0) == FreeResult::kNotAllocated);  // interior page
    CHECK(arena.buddy.free(block + 4 * kPageSize, 3) == FreeResult::kOutOfRange);  // misaligned for order 3
    CHECK(arena.buddy.free(arena.end, 0) == FreeResult::kOutOfRange);
    CHECK(arena.buddy.free(block, 3) == FreeResult::kOk);
    CHECK(arena.buddy.free(block, 3) == FreeResult::kNotAllocated);  // double free
    CHECK(arena.buddy.check_consistency());
    CHECK(arena.buddy.free_pages() == 1024);
}

TEST_CASE("cached pages are neither allocated nor free", "[buddy]") {
    Arena arena(64);
    arena.buddy.add_free_range(arena.base, arena.end);
    const uint64_t page = arena.buddy.allocate(0);
    CHECK(arena.buddy.mark_cached(page));
    CHECK_FALSE(arena.buddy.mark_cached(page));  // a second free into a cache is caught
    CHECK(arena.buddy.allocated_order(page) == -1);
    CHECK(arena.buddy.free(page, 0) == FreeResult::kNotAllocated);
    CHECK(arena.buddy.unmark_cached(page));
    CHECK_FALSE(arena.buddy.unmark_cached(page));
    CHECK(arena.buddy.free(page, 0) == FreeResult::kOk);
    const uint64_t big = arena.buddy.allocate(1);
    CHECK_FALSE(arena.buddy.mark_cached(big));  // only single pages are cached
}

TEST_CASE("exhaustion returns 0 and everything comes back", "[buddy]") {
    Arena arena(700, 3);  // unaligned start: blocks are aligned relative to the range's origin
    arena.buddy.add_free_range(arena.base, arena.end);
    std::vector<std::pair<uint64_t, uint32_t>> blocks;
    for (int order = kMaxOrder; order >= 0; --order)
        while (uint64_t block = arena.buddy.allocate(order)) blocks.emplace_back(block, order);
    CHECK(arena.buddy.free_pages() == 0);
    CHECK(arena.buddy.allocate(0) == 0);
    uint64_t pages = 0;
    for (auto [block, order] : blocks) {
        CHECK(block >= arena.base);
        CHECK(block + (kPageSize << order) <= arena.end);
        pages += uint64_t{1} << order;
    }
    CHECK(pages == 700);
    for (auto [block, order] : blocks) REQUIRE(arena.buddy.free(block, order) == FreeResult::kOk);
    CHECK(arena.buddy.free_pages() == 700);
    CHECK(arena.buddy.check_consistency());
}

TEST_CASE("random allocation and free keeps blocks disjoint and coalesces fully", "[buddy]") {
    Arena arena(4 * 1024);
    arena.buddy.add_free_range(arena.base, arena.end);
    std::mt19937_64 random(1234);
    std::map<uint64_t, uint32_t> live;  // address -> order
    for (int round = 0; round < 20000; ++round) {
        if (!live.empty() && random() % 2) {
            auto it = live.begin();
            std::advance(it, random() % live.size());
            REQUIRE(arena.buddy.free(it->first, it->second) == FreeResult::kOk);
            live.erase(it);
        } else {
            const uint32_t order = random() % 7;
            const uint64_t block = arena.buddy.allocate(order);
            if (!block) continue;
            // Disjoint from its neighbours in address order.
            auto next = live.lower_bound(block);
            if (next != live.end()) REQUIRE(block + (kPageSize << order) <= next->first);
            if (next != live.begin()) {
                auto previous = std::prev(next);
                REQUIRE(previous->first + (kPageSize << previous->second) <= block);
            }
            live.emplace(block, order);
        }
    }
    REQUIRE(arena.buddy.check_consistency());
    for (auto [block, order] : live) REQUIRE(arena.buddy.free(block, order) == FreeResult::kOk);
    CHECK(arena.buddy.free_blocks(kMaxOrder) == 4);
    CHECK(arena.buddy.free_pages() == 4 * 1024);
}
