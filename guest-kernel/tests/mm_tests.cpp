// Memory manager: page allocator, heap and paging.
#include "arch/x86_64/fault_probe.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/test/ktest.h"
#include "lib/random.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "mm/page_allocator.h"
#include "mm/paging.h"
#include "tests/test_threads.h"

extern "C" char __text_start[];

namespace hvkvm::guest {
namespace {

using namespace mm;

// Allocated blocks are chained through their own first bytes, so the tests need no other memory.
struct Block {
    Block* next;
    uint64_t order;
    uint64_t pattern;
};

uint64_t pattern_for(uint64_t address) { return address * 0x9e3779b97f4a7c15ull ^ 0xa5a5a5a5a5a5a5a5ull; }

void fill(Block* block, uint32_t order) {
    block->order = order;
    block->pattern = pattern_for(reinterpret_cast<uint64_t>(block));
    // Also stamp the block's last word, to catch overlapping blocks.
    auto* last = reinterpret_cast<uint64_t*>(reinterpret_cast<uint64_t>(block) + (kPageSize << order) - 8);
    *last = block->pattern;
}

bool intact(const Block* block) {
    const auto address = reinterpret_cast<uint64_t>(block);
    const auto* last = reinterpret_cast<const uint64_t*>(address + (kPageSize << block->order) - 8);
    return block->pattern == pattern_for(address) && *last == block->pattern;
}

// A fixed-capacity set of live blocks for random alloc/free (kept in static storage).
constexpr uint32_t kSlots = 512;
Block* live_blocks[kSlots];

}  // namespace

KTEST(mm, page_allocator_random_stress_without_leaks) {
    drain_page_cache();
    const PageStats before = page_stats();
    Random random(42);
    for (auto& slot : live_blocks) slot = nullptr;
    uint32_t allocations = 0, corrupted = 0;
    for (uint32_t round = 0; round < 20000; ++round) {
        Block*& slot = live_blocks[random.below(kSlots)];
        if (slot) {
            corrupted += !intact(slot);
            free_pages(reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(slot->order));
            slot = nullptr;
        } else {
            const uint32_t order = static_cast<uint32_t>(random.below(6));
            const uint64_t address = allocate_pages(order);
            KASSERT(address != 0);
            KEXPECT_EQ(address % (kPageSize << order), 0u);  // naturally aligned
            slot = reinterpret_cast<Block*>(address);
            fill(slot, order);
            ++allocations;
        }
    }
    for (Block*& slot : live_blocks) {
        if (!slot) continue;
        corrupted += !intact(slot);
        free_pages(reinterpret_cast<uint64_t>(slot), static_cast<uint32_t>(slot->order));
        slot = nullptr;
    }
    drain_page_cache();
    const PageStats after = page_stats();
    KEXPECT(allocations > 5000);
    KEXPECT_EQ(corrupted, 0u);
    KEXPECT_EQ(after.free_pages, before.free_pages);
    KEXPECT_EQ(after.free_blocks[kMaxOrder], before.free_blocks[kMaxOrder]);  // everything coalesced again
    KEXPECT(page_allocator_consistent());
}

KTEST(mm, fragmentation_and_coalescing) {
    drain_page_cache();
    const PageStats before = page_stats();
    // Take 2048 single pages, chained through themselves.
    Block* head = nullptr;
    uint32_t count = 0;
    for (; count < 2048; ++count) {
        auto* block = reinterpret_cast<Block*>(allocate_pages(0));
        KASSERT(block != nullptr);
        fill(block, 0);
        block->next = head;
        head = block;
    }
    drain_page_cache();
    const PageStats allocated = page_stats();
    // Free every other page: none of those can coalesce, because each buddy is still in use.
    Block* kept = nullptr;
    uint32_t index = 0;
    uint64_t freed_singles = 0;
    for (Block* block = head; block;) {
        Block* next = block->next;
        if (index++ % 2 == 0 && allocated_order(reinterpret_cast<uint64_t>(block) ^ kPageSize) == 0) {
            free_pages(reinterpret_cast<uint64_t>(block), 0);
            ++freed_singles;
        } else {
            block->next = kept;
            kept = block;
        }
        block = next;
    }
    drain_page_cache();
    const PageStats fragmented = page_stats();
    KEXPECT(freed_singles > 0);
    KEXPECT_EQ(fragmented.free_blocks[0], allocated.free_blocks[0] + freed_singles);
    // Free the rest: the holes close and the memory coalesces back to its original blocks.
    uint32_t corrupted = 0;
    while (kept) {
        Block* next = kept->next;
        corrupted += !intact(kept);
        free_pages(reinterpret_cast<uint64_t>(kept), 0);
        kept = next;
    }
    drain_page_cache();
    const PageStats after = page_stats();
    KEXPECT_EQ(corrupted, 0u);
    KEXPECT_EQ(after.free_pages, before.free_pages);
    for (uint32_t order = 0; order <= kMaxOrder; ++order) KEXPECT_EQ(after.free_blocks[order], before.free_blocks[order]);
}

KTEST(mm, exhaustion_is_reported_and_fully_recovered) {
    drain_page_cache();
    const PageStats before = page_stats();
    Block* head = nullptr;
    uint64_t pages = 0;
    for (int order = static_cast<int>(kMaxOrder); order >= 0; --order) {
        while (uint64_t address = allocate_pages(static_cast<uint32_t>(order))) {
            auto* block = reinterpret_cast<Block*>(address);
            fill(block, static_cast<uint32_t>(order));
            block->next = head;
            head = block;
            pages += uint64_t{1} << order;
        }
    }
    KEXPECT_EQ(allocate_pages(0), 0u);
    KEXPECT_EQ(pages, before.free_pages);
    // With every page taken, the heap can serve a small object only from a slab it already has.
    const HeapStats heap = heap_stats();
    void* object = mm::allocate(64);
    if (object) {
        KEXPECT(heap.slab_pages > 0);
        KEXPECT_EQ(heap_stats().slab_pages, heap.slab_pages);  // no new slab page came from nowhere
        mm::free(object);
    }
    KEXPECT(mm::allocate(3 * kPageSize) == nullptr);  // a large allocation needs fresh pages: refused
    uint32_t corrupted = 0;
    while (head) {
        Block* next = head->next;
        corrupted += !intact(head);
        free_pages(reinterpret_cast<uint64_t>(head), static_cast<uint32_t>(head->order));
        head = next;
    }
    drain_page_cache();
    KEXPECT_EQ(corrupted, 0u);
    KEXPECT_EQ(page_stats().free_pages, before.free_pages);
}

KTEST(mm, heap_sizes_and_alignments) {
    const HeapStats before = heap_stats();
    for (size_t alignment = 1; alignment <= 16384; alignment *= 2) {
        static constexpr size_t kSizes[] = {1, 15, 16, 17, 100, 513, 2048, 2049, 4096, 10000, 100000};
        for (size_t size : kSizes) {
            auto* bytes = static_cast<uint8_t*>(mm::allocate(size, alignment));
            KASSERT(bytes != nullptr);
            KEXPECT_EQ(reinterpret_cast<uint64_t>(bytes) % (alignment < 16 ? 16 : alignment), 0u);
            memset(bytes, 0x5a, size);
            KEXPECT(bytes[0] == 0x5a && bytes[size - 1] == 0x5a);
            mm::free(bytes);
        }
    }
    mm::free(nullptr);
    KEXPECT_EQ(heap_stats().live_allocations, before.live_allocations);
}

KTEST(mm, heap_random_stress_without_leaks) {
    const HeapStats before = heap_stats();
    struct Allocation {
        uint8_t* bytes;
        size_t size;
    };
    static Allocation slots[1024];
    Random random(7);
    uint32_t corrupted = 0;
    for (uint32_t round = 0; round < 30000; ++round) {
        Allocation& slot = slots[random.below(1024)];
        if (slot.bytes) {
            const uint8_t stamp = static_cast<uint8_t>(slot.size);
            corrupted += slot.bytes[0] != stamp || slot.bytes[slot.size - 1] != stamp;
            mm::free(slot.bytes);
            slot.bytes = nullptr;
        } else {
            // Mostly small objects, sometimes large ones.
            slot.size = 1 + (random.below(8) == 0 ? random.below(20000) : random.below(600));
            slot.bytes = static_cast<uint8_t*>(mm::allocate(slot.size));
            KASSERT(slot.bytes != nullptr);
            memset(slot.bytes, static_cast<uint8_t>(slot.size), slot.size);
        }
    }
    for (Allocation& slot : slots) {
        if (slot.bytes) mm::free(slot.bytes);
        slot.bytes = nullptr;
    }
    KEXPECT_EQ(corrupted, 0u);
    KEXPECT_EQ(heap_stats().live_allocations, before.live_allocations);
    KEXPECT_EQ(heap_stats().large_pages, before.large_pages);
}

namespace {

struct Counted {
    static inline int alive = 0;
    uint64_t payload[5];
    Counted() { ++alive; }
    ~Counted() { --alive; }
};

struct alignas(256) Aligned {
    uint8_t bytes[300];
};

}  // namespace

KTEST(mm, new_and_delete) {
    const HeapStats before = heap_stats();
    Counted* one = new Counted;
    Counted* many = new Counted[10];
    KEXPECT_EQ(Counted::alive, 11);
    delete one;
    delete[] many;
    KEXPECT_EQ(Counted::alive, 0);
    Aligned* aligned = new Aligned;
    KEXPECT_EQ(reinterpret_cast<uint64_t>(aligned) % 256, 0u);
    delete aligned;
    KEXPECT_EQ(heap_stats().live_allocations, before.live_allocations);
}

namespace {
constexpr uint64_t kTestVirtualBase = 0x0000300000000000ull;  // outside every region the kernel uses
}

KTEST(mm, map_translate_unmap_4k) {
    const uint64_t frame = allocate_pages(0);
    KASSERT(frame != 0);
    *reinterpret_cast<volatile uint64_t*>(frame) = 0x1122334455667788ull;
    const uint64_t address = kTestVirtualBase + 0x5000;
    KEXPECT(map_page(address, frame, PageSize::k4KiB, kMapWritable));
    KEXPECT(!map_page(address, frame, PageSize::k4KiB, kMapWritable));  // already mapped
    KEXPECT_EQ(translate(address + 0x123), frame + 0x123);
    uint64_t value = 0;
    KEXPECT(x86::probe_read(address, value));
    KEXPECT_EQ(value, 0x1122334455667788ull);
    KEXPECT(x86::probe_write(address + 8, 42));
    KEXPECT_EQ(*reinterpret_cast<volatile uint64_t*>(frame + 8), 42u);
    KEXPECT_EQ(unmap_page(address, PageSize::k4KiB), frame);
    KEXPECT_EQ(translate(address), 0u);
    KEXPECT(!x86::probe_read(address, value));  // the stale TLB entry is gone
    KEXPECT_EQ(unmap_page(address, PageSize::k4KiB), 0u);
    free_pages(frame, 0);
}

KTEST(mm, map_translate_unmap_2m) {
    const uint64_t block = allocate_pages(9);  // 2 MiB, naturally aligned
    KASSERT(block != 0);
    const uint64_t address = kTestVirtualBase + (64ull << 21);
    KEXPECT(map_page(address, block, PageSize::k2MiB, kMapWritable));
    KEXPECT_EQ(translate(address + 0x1ff000), block + 0x1ff000);
    KEXPECT(x86::probe_write(address + 0x100008, 7));
    KEXPECT_EQ(*reinterpret_cast<volatile uint64_t*>(block + 0x100008), 7u);
    KEXPECT(!map_page(address + 0x3000, block, PageSize::k4KiB, kMapWritable));  // inside the 2 MiB page
    KEXPECT_EQ(unmap_page(address, PageSize::k4KiB), 0u);                        // wrong size
    KEXPECT_EQ(unmap_page(address, PageSize::k2MiB), block);
    uint64_t value;
    KEXPECT(!x86::probe_read(address + 0x100008, value));
    free_pages(block, 9);
}

KTEST(mm, null_page_and_kernel_text_are_protected) {
    uint64_t value;
    KEXPECT(!x86::probe_read(0, value));
    KEXPECT(!x86::probe_read(0xff8, value));
    const auto text = reinterpret_cast<uint64_t>(__text_start);
    KEXPECT(x86::probe_read(text, value));
    KEXPECT(!x86::probe_write(text, value));  // read-only
    KEXPECT_EQ(translate(text), text);        // identity-mapped
}

KTEST(mm, stacks_have_guard_pages) {
    KernelStack stack;
    KASSERT(allocate_stack(16 * 1024, stack));
    KEXPECT_EQ(stack.top - stack.bottom, 16u * 1024);
    KEXPECT(x86::probe_write(stack.top - 8, 1));
    KEXPECT(x86::probe_write(stack.bottom, 2));
    uint64_t value;
    KEXPECT(!x86::probe_read(stack.bottom - 8, value));  // the guard page
    KEXPECT(is_stack_guard_page(stack.bottom - 8));
    KEXPECT(!is_stack_guard_page(stack.bottom));
    free_stack(stack);
    KEXPECT(!x86::probe_read(stack.top - 8, value));  // unmapped once freed
    KernelStack too_big;
    KEXPECT(!allocate_stack(kStackSlotBytes, too_big));
}

}  // namespace hvkvm::guest

namespace hvkvm::guest {
namespace {

// Leaves pages in the calling CPU's cache: single pages freed go to the cache, not the zone.
void fill_this_cpu_cache(void* pages_per_cpu) {
    const auto count = reinterpret_cast<uint64_t>(pages_per_cpu);
    uint64_t taken[32];
    for (uint64_t i = 0; i < count; ++i) taken[i] = mm::allocate_pages(0);
    for (uint64_t i = 0; i < count; ++i)
        if (taken[i]) mm::free_pages(taken[i], 0);
}

}  // namespace

KTEST(mm, exhaustion_takes_back_pages_other_cpus_cache) {
    KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs: pages cached by another CPU");
    mm::drain_page_cache();
    const mm::PageStats before = mm::page_stats();
    const uint32_t self = [] {
        platform::InterruptsDisabled no_interrupts;
        return this_cpu().index;
    }();
    for (uint32_t i = 0; i < smp::online_count(); ++i) {
        const uint32_t cpu = test::nth_online_cpu(i);
        if (cpu != self) smp::run_on_cpu(cpu, fill_this_cpu_cache, reinterpret_cast<void*>(uint64_t{32}));
    }
    KASSERT(mm::page_stats().cached_pages > 0);  // other CPUs' caches hold pages now
    // Take everything from this CPU: the zones run dry first; then every CPU's cache must be
    // drained, so that no page stays stranded in another CPU's cache.
    Block* head = nullptr;
    uint64_t pages = 0;
    while (uint64_t address = mm::allocate_pages(0)) {
        auto* block = reinterpret_cast<Block*>(address);
        block->next = head;
        head = block;
        ++pages;
    }
    KEXPECT_EQ(pages, before.free_pages);
    KEXPECT_EQ(mm::page_stats().cached_pages, 0u);
    while (head) {
        Block* next = head->next;
        mm::free_pages(reinterpret_cast<uint64_t>(head), 0);
        head = next;
    }
    mm::drain_page_cache();
    KEXPECT_EQ(mm::page_stats().free_pages, before.free_pages);
}

KTEST(mm, aligned_allocations_with_many_objects_live) {
    const mm::HeapStats before = mm::heap_stats();
    constexpr uint32_t kLive = 256;
    struct Live {
        uint8_t* bytes;
        size_t size;
        size_t alignment;
    };
    static Live live[kLive];
    Random random(2024);
    uint32_t misaligned = 0, overlapping = 0, corrupted = 0;
    for (uint32_t i = 0; i < kLive; ++i) {
        const size_t alignment = size_t{1} << random.below(13);  // 1 .. 4096
        const size_t size = 1 + random.below(random.below(4) == 0 ? 9000 : 300);
        live[i] = {static_cast<uint8_t*>(mm::allocate(size, alignment)), size, alignment};
        KASSERT(live[i].bytes != nullptr);
        misaligned += reinterpret_cast<uint64_t>(live[i].bytes) % alignment != 0;
        memset(live[i].bytes, static_cast<uint8_t>(i), size);
    }
    // Every object still holds its own pattern (no two overlap), and none overlaps another.
    for (uint32_t i = 0; i < kLive; ++i) {
        for (size_t b = 0; b < live[i].size; ++b) corrupted += live[i].bytes[b] != static_cast<uint8_t>(i);
        for (uint32_t j = i + 1; j < kLive; ++j) {
            const auto a = reinterpret_cast<uint64_t>(live[i].bytes), c = reinterpret_cast<uint64_t>(live[j].bytes);
            overlapping += a < c + live[j].size && c < a + live[i].size;
        }
    }
    KEXPECT_EQ(misaligned, 0u);
    KEXPECT_EQ(overlapping, 0u);
    KEXPECT_EQ(corrupted, 0u);
    for (Live& object : live) mm::free(object.bytes);
    KEXPECT_EQ(mm::heap_stats().live_allocations, before.live_allocations);
}

}  // namespace hvkvm::guest
