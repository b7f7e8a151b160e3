#include "mm/page_allocator.h"

#include <new>

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hvkvm/abi/align.h"
#include "kernel/panic.h"
#include "kernel/sync/spinlock.h"
#include "lib/string.h"
#include "mm/node_topology.h"

namespace hvkvm::guest::mm {
namespace {

// A usable region may be split at every node boundary the SRAT draws through it.
constexpr uint32_t kMaxAreas = abi::kMaxMemoryRegions + numa::kMaxMemoryRanges;
constexpr uint32_t kMaxAreasPerZone = kMaxAreas;
constexpr uint32_t kCacheCapacity = 64;
constexpr uint32_t kCacheBatch = 16;  // pages moved between a cache and its zone at a time
// A zone is under pressure at or below 1/128 of its pages (Linux's low watermark is of that
// order: min_free_kbytes ~ sqrt(16 x RAM in KiB), plus a quarter), and never less than two cache
// batches, so that a full cache refill cannot by itself drain a small zone.
constexpr uint64_t kLowWatermarkDivisor = 128;
constexpr uint64_t kMinLowWatermark = 2 * kCacheBatch;

// A contiguous range of one node's RAM: its buddy allocator and the owner tags of its pages.
struct Area {
    BuddyAllocator buddy;
    uint8_t* tags;
    uint32_t node;
    uint8_t& tag(uint64_t address) { return tags[(address - buddy.base()) >> kPageShift]; }
};

// A zone: the areas of one node, under one lock. `free_pages` is written under the lock and read
// without it for watermark decisions, which only need a recent value.
struct Zone {
    SpinLock lock;
    Area* areas[kMaxAreasPerZone];
    uint32_t area_count = 0;
    uint64_t managed_pages = 0;
    uint64_t low_watermark = 0;
    uint64_t free_pages = 0;

    Area* area_of(uint64_t address) {
        for (uint32_t i = 0; i < area_count; ++i)
            if (areas[i]->buddy.contains(address)) return areas[i];
        return nullptr;
    }
    bool above_low_watermark_after(uint64_t pages) const {
        return __atomic_load_n(&free_pages, __ATOMIC_RELAXED) >= low_watermark + pages + 1;
    }
    uint64_t allocate_locked(uint32_t order) {
        for (uint32_t i = 0; i < area_count; ++i) {
            if (uint64_t address = areas[i]->buddy.allocate(order)) {
                areas[i]->tag(address) = 0;
                __atomic_store_n(&free_pages, free_pages - (uint64_t{1} << order), __ATOMIC_RELAXED);
                return address;
            }
        }
        return 0;
    }
    void free_locked(uint64_t address, uint32_t order) {
        Area* area = area_of(address);
        const FreeResult result = area ? area->buddy.free(address, order) : FreeResult::kOutOfRange;
        switch (result) {
        case FreeResult::kOk:
            __atomic_store_n(&free_pages, free_pages + (uint64_t{1} << order), __ATOMIC_RELAXED);
            return;
        case FreeResult::kOutOfRange: panic("free_pages(%#lx, order %u): not memory this allocator owns", address, order);
        case FreeResult::kNotAllocated: panic("free_pages(%#lx, order %u): double free or not a block start", address, order);
        case FreeResult::kWrongOrder:
            panic("free_pages(%#lx, order %u): allocated with order %d", address, order, area->buddy.allocated_order(address));
        }
    }
};

// What one CPU's allocations did on one node (NodeStats documents each). Written only by that
// CPU with interrupts off; summed by readers without a lock.
struct NodeCounters {
    uint64_t hit, miss, foreign, local, other;
};

void bump(uint64_t& counter, uint64_t pages) { __atomic_store_n(&counter, counter + pages, __ATOMIC_RELAXED); }

// Single pages of one node kept by one CPU. Its lock is uncontended except when an allocation
// that found the zones empty drains every CPU's cache (lock order: cache, then zone).
struct PageCache {
    SpinLock lock;
    uint32_t count = 0;
    uint32_t node = 0;
    NodeCounters counters = {};
    uint64_t pages[kCacheCapacity];
};

// The allocator's state: one per VM. Areas are sorted by address. Each CPU's caches (one per
// node) live in memory of the CPU's own node, allocated at boot.
struct PageAllocator {
    Zone zones[numa::kMaxNodes];
    uint32_t zone_count = 0;
    Area areas[kMaxAreas];
    uint32_t area_count = 0;
    PageCache* caches[abi::kMaxVcpus] = {};
    uint64_t migrated_in[numa::kMaxNodes] = {};
} allocator;

uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }

Area* area_owning(uint64_t address) {
    for (uint32_t i = 0; i < allocator.area_count; ++i)
        if (allocator.areas[i].buddy.contains(address)) return &allocator.areas[i];
    return nullptr;
}

// --- building the zones ---------------------------------------------------------------------

uint64_t metadata_bytes_for(uint64_t start, uint64_t end) {
    return abi::align_up(BuddyAllocator::metadata_bytes(start, end), 64) + abi::align_up((end - start) >> kPageShift, 64);
}

// One node's piece of a usable region becomes an area whose metadata (buddy bytes, then tags) is
// carved from its own start, so that a node's page metadata is on that node. A piece too small
// to hold its own metadata and a page is left unused.
void add_area(uint64_t start, uint64_t end, uint32_t node) {
    const uint64_t metadata = metadata_bytes_for(start, end);
    const uint64_t first_free = abi::align_up(start + metadata, kPageSize);
    if (first_free >= end) return;
    if (allocator.area_count == kMaxAreas) panic("more than %u RAM areas", kMaxAreas);
    Area& area = allocator.areas[allocator.area_count++];
    auto* bytes = reinterpret_cast<uint8_t*>(start);
    area.buddy.init(start, end, bytes);
    area.tags = bytes + abi::align_up(BuddyAllocator::metadata_bytes(start, end), 64);  // zeroed as pages are allocated
    area.node = node;
    area.buddy.add_free_range(first_free, end);
    Zone& zone = allocator.zones[node];
    zone.areas[zone.area_count++] = &area;
    zone.managed_pages += area.buddy.managed_pages();
    zone.free_pages += area.buddy.free_pages();
}

// Splits a usable region at the SRAT's node boundaries (discover_topology checked that the SRAT
// covers every region).
void add_usable_region(const abi::MemoryRegion& region) {
    uint64_t start = abi::align_up(region.base, kPageSize);
    const uint64_t end = align_down(region.base + region.size, kPageSize);
    while (start < end) {
        const uint32_t node = srat_node_of(start);
        if (node == kNoNode) panic("RAM at %#lx is in no NUMA node", start);
        const uint64_t range_end = srat_range_end(start);
        const uint64_t piece_end = range_end < end ? align_down(range_end, kPageSize) : end;
        if (piece_end <= start) panic("SRAT range ending at %#lx is not page-aligned", range_end);
        add_area(start, piece_end, node);
        start = piece_end;
    }
}

void set_watermarks() {
    for (uint32_t node = 0; node < allocator.zone_count; ++node) {
        Zone& zone = allocator.zones[node];
        const uint64_t low = zone.managed_pages / kLowWatermarkDivisor;
        zone.low_watermark = zone.managed_pages == 0 ? 0 : (low > kMinLowWatermark ? low : kMinLowWatermark);
    }
}

uint32_t order_for_bytes(uint64_t bytes) {
    uint32_t order = 0;
    while ((kPageSize << order) < bytes) ++order;
    return order;
}

// Each CPU's caches, in memory of its own node (or the nearest with memory).
void create_caches(uint32_t vcpu_count) {
    const uint64_t bytes = sizeof(PageCache) * allocator.zone_count;
    const uint32_t order = order_for_bytes(bytes);
    for (uint32_t cpu = 0; cpu < vcpu_count; ++cpu) {
        const numa::NodeOrder& order_list = fallback_order(node_of_cpu(cpu));
        uint64_t block = 0;
        for (uint32_t i = 0; i < order_list.count && !block; ++i) {
            Zone& zone = allocator.zones[order_list.nodes[i]];
            SpinLockGuard guard(zone.lock);
            block = zone.allocate_locked(order);
        }
        if (!block) panic("no memory for vCPU %u's page caches", cpu);
        auto* caches = reinterpret_cast<PageCache*>(block);
        for (uint32_t node = 0; node < allocator.zone_count; ++node) {
            new (&caches[node]) PageCache();
            caches[node].node = node;
        }
        allocator.caches[cpu] = caches;
    }
}

}  // namespace

void init_page_allocator(const abi::BootInfo& boot_info) {
    allocator.zone_count = node_count();
    for (uint32_t i = 0; i < boot_info.memory_region_count; ++i)
        if (boot_info.memory_regions[i].type == abi::MemoryType::kUsable) add_usable_region(boot_info.memory_regions[i]);
    set_watermarks();
    create_caches(boot_info.vcpu_count);
}

namespace {

// --- allocation -----------------------------------------------------------------------------

enum class Watermark : uint8_t { kRespect, kIgnore };

// Counts an allocation of `pages` on `node` by this CPU (interrupts off), meant for `preferred`.
void count_allocation(PageCache* caches, uint32_t node, uint32_t preferred, uint32_t cpu_node, uint64_t pages) {
    NodeCounters& counters = caches[node].counters;
    if (node == preferred) {
        bump(counters.hit, pages);
    } else {
        bump(counters.miss, pages);
        bump(caches[preferred].counters.foreign, pages);
    }
    bump(node == cpu_node ? counters.local : counters.other, pages);
}

// Moves up to a batch of pages from the cache's zone into the cache while the zone stays above
// its low watermark. Below it, kIgnore takes the one page needed now: a cache must not stock up
// on a node's last pages, which would then serve allocations that ought to fall back.
void refill(PageCache& cache, Watermark watermark) {
    Zone& zone = allocator.zones[cache.node];
    SpinLockGuard guard(zone.lock);
    while (cache.count < kCacheBatch) {
        if (!zone.above_low_watermark_after(1) && (watermark == Watermark::kRespect || cache.count > 0)) break;
        const uint64_t page = zone.allocate_locked(0);
        if (!page) break;
        zone.area_of(page)->buddy.mark_cached(page);
        cache.pages[cache.count++] = page;
    }
}

void drain(PageCache& cache, uint32_t keep) {
    Zone& zone = allocator.zones[cache.node];
    SpinLockGuard guard(zone.lock);
    while (cache.count > keep) {
        const uint64_t page = cache.pages[--cache.count];
        zone.area_of(page)->buddy.unmark_cached(page);
        zone.free_locked(page, 0);
    }
}

// Returns every CPU's cached pages to the zones: memory must not sit idle in one CPU's cache
// while an allocation on another fails.
void drain_every_cache() {
    for (PageCache* caches : allocator.caches) {
        if (!caches) continue;
        for (uint32_t node = 0; node < allocator.zone_count; ++node) {
            PageCache& cache = caches[node];
            if (__atomic_load_n(&cache.count, __ATOMIC_RELAXED) == 0) continue;
            IrqSpinLockGuard guard(cache.lock);
            drain(cache, 0);
        }
    }
}

uint64_t take_from(PageCache& cache) {
    const uint64_t page = cache.pages[--cache.count];
    Area* area = allocator.zones[cache.node].area_of(page);
    area->buddy.unmark_cached(page);
    area->tag(page) = 0;
    return page;
}

// The nodes an allocation for `node` under `policy` may use, in order: its fallback order, or
// just the node.
struct Candidates {
    const numa::NodeOrder* order;  // null: only `single`
    uint32_t single;

    uint32_t count() const { return order ? order->count : 1; }
    uint32_t at(uint32_t i) const { return order ? order->nodes[i] : single; }
};

Candidates candidates_for(uint32_t node, NodePolicy policy) {
    return Candidates{policy == NodePolicy::kPreferred ? &fallback_order(node) : nullptr, node};
}

uint64_t try_allocate_page(uint32_t preferred, const Candidates& candidates, Watermark watermark) {
    platform::InterruptsDisabled no_interrupts;  // the caches are this CPU's
    const PerCpu& cpu = this_cpu();
    PageCache* caches = allocator.caches[cpu.index];
    for (uint32_t i = 0; i < candidates.count(); ++i) {
        const uint32_t node = candidates.at(i);
        PageCache& cache = caches[node];
        SpinLockGuard guard(cache.lock);
        if (cache.count == 0) refill(cache, watermark);
        if (cache.count == 0) continue;
        const uint64_t page = take_from(cache);
        count_allocation(caches, node, preferred, cpu.node, 1);
        return page;
    }
    return 0;
}

uint64_t try_allocate_block(uint32_t order, uint32_t preferred, const Candidates& candidates, Watermark watermark) {
    const uint64_t pages = uint64_t{1} << order;
    for (uint32_t i = 0; i < candidates.count(); ++i) {
        const uint32_t node = candidates.at(i);
        Zone& zone = allocator.zones[node];
        IrqSpinLockGuard guard(zone.lock);
        if (watermark == Watermark::kRespect && !zone.above_low_watermark_after(pages)) continue;
        if (const uint64_t block = zone.allocate_locked(order)) {
            const PerCpu& cpu = this_cpu();  // interrupts are off under the guard
            count_allocation(allocator.caches[cpu.index], node, preferred, cpu.node, pages);
            return block;
        }
    }
    return 0;
}

uint64_t try_allocate(uint32_t order, uint32_t preferred, const Candidates& candidates, Watermark watermark) {
    return order == 0 ? try_allocate_page(preferred, candidates, watermark)
                      : try_allocate_block(order, preferred, candidates, watermark);
}


// The fast path: a single page from this CPU's cache of the running thread's ideal node.
uint64_t take_cached_page() {
    platform::InterruptsDisabled no_interrupts;  // the caches are this CPU's
    const PerCpu& cpu = this_cpu();
    PageCache* caches = allocator.caches[cpu.index];
    PageCache& cache = caches[cpu.memory_node];
    SpinLockGuard guard(cache.lock);
    if (cache.count == 0) return 0;
    const uint64_t page = take_from(cache);
    count_allocation(caches, cpu.memory_node, cpu.memory_node, cpu.node, 1);
    return page;
}

}  // namespace

uint64_t allocate_pages(uint32_t order) {
    if (order == 0)
        if (uint64_t page = take_cached_page()) return page;
    return allocate_pages_on_node(order, this_cpu().memory_node, NodePolicy::kPreferred);
}

uint64_t allocate_pages_on_node(uint32_t order, uint32_t node, NodePolicy policy) {
    if (node >= allocator.zone_count) panic("allocate_pages_on_node(order %u, node %u): no such node", order, node);
    const Candidates candidates = candidates_for(node, policy);
    // Every node of the order above its low watermark first; only then anything left.
    if (uint64_t address = try_allocate(order, node, candidates, Watermark::kRespect)) return address;
    if (policy == NodePolicy::kOnlyAboveLowWatermark) return 0;
    if (uint64_t address = try_allocate(order, node, candidates, Watermark::kIgnore)) return address;
    drain_every_cache();  // the zones are out of blocks: take back what the CPU caches hold
    return try_allocate(order, node, candidates, Watermark::kIgnore);
}

void free_pages(uint64_t physical_address, uint32_t order) {
    Area* area = area_owning(physical_address);
    if (order == 0) {
        platform::InterruptsDisabled no_interrupts;
        if (!area) panic("free_pages(%#lx, order 0): not memory this allocator owns", physical_address);
        PageCache& cache = allocator.caches[this_cpu().index][area->node];
        SpinLockGuard cache_guard(cache.lock);
        if (!area->buddy.mark_cached(physical_address))  // catches double frees before caching
            panic("free_pages(%#lx, order 0): not an allocated single page", physical_address);
        if (cache.count == kCacheCapacity) drain(cache, kCacheCapacity - kCacheBatch);
        cache.pages[cache.count++] = physical_address;
        return;
    }
    if (!area) panic("free_pages(%#lx, order %u): not memory this allocator owns", physical_address, order);
    Zone& zone = allocator.zones[area->node];
    IrqSpinLockGuard guard(zone.lock);
    zone.free_locked(physical_address, order);
}

uint32_t node_of_address(uint64_t physical_address) {
    const Area* area = area_owning(physical_address);
    return area ? area->node : kNoNode;
}

int allocated_order(uint64_t physical_address) {
    // A block's metadata byte is written only under the zone lock or by the block's owner, so
    // the owner asking about its own block reads a stable value.
    Area* area = area_owning(physical_address);
    return area ? area->buddy.allocated_order(physical_address) : -1;
}

void set_page_tag(uint64_t physical_address, uint8_t tag) {
    Area* area = area_owning(physical_address);
    if (!area) panic("set_page_tag(%#lx): not allocator-owned memory", physical_address);
    area->tag(physical_address) = tag;
}

uint8_t page_tag(uint64_t physical_address) {
    Area* area = area_owning(physical_address);
    return area ? area->tag(physical_address) : 0;
}

PageOwner page_owner(uint64_t physical_address) {
    Area* area = area_owning(physical_address);
    return area ? PageOwner{area->tag(physical_address), area->node} : PageOwner{0, kNoNode};
}

namespace {

uint64_t cached_pages_of(uint32_t node) {
    uint64_t cached = 0;
    for (const PageCache* caches : allocator.caches)
        if (caches) cached += __atomic_load_n(&caches[node].count, __ATOMIC_RELAXED);
    return cached;
}

uint64_t sum_counter(uint32_t node, uint64_t NodeCounters::*counter) {
    uint64_t sum = 0;
    for (const PageCache* caches : allocator.caches)
        if (caches) sum += __atomic_load_n(&(caches[node].counters.*counter), __ATOMIC_RELAXED);
    return sum;
}

}  // namespace

PageStats page_stats() {
    PageStats stats{};
    stats.zone_count = allocator.zone_count;
    for (uint32_t node = 0; node < allocator.zone_count; ++node) {
        Zone& zone = allocator.zones[node];
        IrqSpinLockGuard guard(zone.lock);
        for (uint32_t i = 0; i < zone.area_count; ++i) {
            const BuddyAllocator& buddy = zone.areas[i]->buddy;
            stats.managed_pages += buddy.managed_pages();
            stats.free_pages += buddy.free_pages();
            for (uint32_t order = 0; order <= kMaxOrder; ++order) stats.free_blocks[order] += buddy.free_blocks(order);
        }
    }
    for (uint32_t node = 0; node < allocator.zone_count; ++node) stats.cached_pages += cached_pages_of(node);
    stats.free_pages += stats.cached_pages;
    return stats;
}

NodeStats node_stats(uint32_t node) {
    NodeStats stats{};
    if (node >= allocator.zone_count) return stats;
    const Zone& zone = allocator.zones[node];
    stats.managed_pages = zone.managed_pages;
    stats.cached_pages = cached_pages_of(node);
    stats.free_pages = __atomic_load_n(&zone.free_pages, __ATOMIC_RELAXED) + stats.cached_pages;
    stats.low_watermark = zone.low_watermark;
    stats.hit = sum_counter(node, &NodeCounters::hit);
    stats.miss = sum_counter(node, &NodeCounters::miss);
    stats.foreign = sum_counter(node, &NodeCounters::foreign);
    stats.local = sum_counter(node, &NodeCounters::local);
    stats.other = sum_counter(node, &NodeCounters::other);
    stats.migrated_in = __atomic_load_n(&allocator.migrated_in[node], __ATOMIC_RELAXED);
    return stats;
}

void count_migrated_in(uint32_t node, uint64_t pages) { __atomic_fetch_add(&allocator.migrated_in[node], pages, __ATOMIC_RELAXED); }

void drain_page_cache() { drain_every_cache(); }

bool page_allocator_consistent() {
    for (uint32_t node = 0; node < allocator.zone_count; ++node) {
        Zone& zone = allocator.zones[node];
        IrqSpinLockGuard guard(zone.lock);
        uint64_t free = 0;
        for (uint32_t i = 0; i < zone.area_count; ++i) {
            if (!zone.areas[i]->buddy.check_consistency()) return false;
            free += zone.areas[i]->buddy.free_pages();
        }
        if (free != zone.free_pages) return false;
    }
    return true;
}

}  // namespace hvkvm::guest::mm
