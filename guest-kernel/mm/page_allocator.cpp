#include "mm/page_allocator.h"

#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hvkvm/abi/align.h"
#include "kernel/panic.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::mm {
namespace {

constexpr uint32_t kMaxAreasPerZone = abi::kMaxMemoryRegions;
constexpr uint32_t kMaxZones = 1;  // one per NUMA node once nodes exist
constexpr uint32_t kCacheCapacity = 64;
constexpr uint32_t kCacheBatch = 16;  // pages moved between a cache and its zone at a time

// A contiguous RAM range: its buddy allocator and the owner tags of its pages.
struct Area {
    BuddyAllocator buddy;
    uint8_t* tags;
    uint8_t& tag(uint64_t address) { return tags[(address - buddy.base()) >> kPageShift]; }
};

// A zone: the areas of one memory node, under one lock.
struct Zone {
    SpinLock lock;
    Area areas[kMaxAreasPerZone];
    uint32_t area_count = 0;

    Area* area_of(uint64_t address) {
        for (uint32_t i = 0; i < area_count; ++i)
            if (areas[i].buddy.contains(address)) return &areas[i];
        return nullptr;
    }
    uint64_t allocate_locked(uint32_t order) {
        for (uint32_t i = 0; i < area_count; ++i) {
            if (uint64_t address = areas[i].buddy.allocate(order)) {
                areas[i].tag(address) = 0;
                return address;
            }
        }
        return 0;
    }
};

// Single pages kept by one CPU. Its lock is uncontended except when an allocation that found
// the zones empty drains every CPU's cache (lock order: cache, then zone).
struct PageCache {
    SpinLock lock;
    uint64_t pages[kCacheCapacity];
    uint32_t count;
};

// The allocator's state: one per VM.
struct PageAllocator {
    Zone zones[kMaxZones];
    uint32_t zone_count = 0;
    PageCache caches[abi::kMaxVcpus];
} allocator;

uint64_t align_down(uint64_t value, uint64_t alignment) { return value & ~(alignment - 1); }

Zone& home_zone() { return allocator.zones[0]; }

void free_to_zone_locked(Zone& zone, uint64_t address, uint32_t order) {
    Area* area = zone.area_of(address);
    const FreeResult result = area ? area->buddy.free(address, order) : FreeResult::kOutOfRange;
    switch (result) {
    case FreeResult::kOk: return;
    case FreeResult::kOutOfRange: panic("free_pages(%#lx, order %u): not memory this allocator owns", address, order);
    case FreeResult::kNotAllocated: panic("free_pages(%#lx, order %u): double free or not a block start", address, order);
    case FreeResult::kWrongOrder:
        panic("free_pages(%#lx, order %u): allocated with order %d", address, order, area->buddy.allocated_order(address));
    }
}

void refill(PageCache& cache) {
    Zone& zone = home_zone();
    SpinLockGuard guard(zone.lock);
    while (cache.count < kCacheBatch) {
        const uint64_t page = zone.allocate_locked(0);
        if (!page) break;
        zone.area_of(page)->buddy.mark_cached(page);
        cache.pages[cache.count++] = page;
    }
}

void drain(PageCache& cache, uint32_t keep) {
    Zone& zone = home_zone();
    SpinLockGuard guard(zone.lock);
    while (cache.count > keep) {
        const uint64_t page = cache.pages[--cache.count];
        zone.area_of(page)->buddy.unmark_cached(page);
        free_to_zone_locked(zone, page, 0);
    }
}

// Returns every CPU's cached pages to the zones: memory must not sit idle in one CPU's cache
// while an allocation on another fails.
void drain_every_cache() {
    for (PageCache& cache : allocator.caches) {
        if (__atomic_load_n(&cache.count, __ATOMIC_RELAXED) == 0) continue;
        IrqSpinLockGuard guard(cache.lock);
        drain(cache, 0);
    }
}

Area* area_owning(uint64_t address) {
    for (uint32_t z = 0; z < allocator.zone_count; ++z)
        if (Area* area = allocator.zones[z].area_of(address)) return area;
    return nullptr;
}

// Finds room for `bytes` of metadata in a usable region and removes it from that region.
uint64_t carve_from_usable(abi::MemoryRegion* regions, uint32_t count, uint64_t bytes) {
    for (uint32_t i = 0; i < count; ++i) {
        abi::MemoryRegion& region = regions[i];
        if (region.type != abi::MemoryType::kUsable) continue;
        const uint64_t start = abi::align_up(region.base, kPageSize);
        const uint64_t end = region.base + region.size;
        if (start + bytes > end) continue;
        const uint64_t carved_end = abi::align_up(start + bytes, kPageSize);
        region.size = end > carved_end ? end - carved_end : 0;
        region.base = carved_end;
        return start;
    }
    panic("no usable RAM region can hold %lu bytes of page metadata", bytes);
}

}  // namespace

void init_page_allocator(const abi::BootInfo& boot_info) {
    abi::MemoryRegion regions[abi::kMaxMemoryRegions];
    const uint32_t count = boot_info.memory_region_count;
    for (uint32_t i = 0; i < count; ++i) regions[i] = boot_info.memory_regions[i];

    Zone& zone = allocator.zones[0];
    allocator.zone_count = 1;
    // One area per usable region: metadata first (it must come out of usable RAM itself).
    uint64_t metadata_needed[abi::kMaxMemoryRegions] = {};
    uint64_t total_metadata = 0;
    for (uint32_t i = 0; i < count; ++i) {
        if (regions[i].type != abi::MemoryType::kUsable) continue;
        const uint64_t start = abi::align_up(regions[i].base, kPageSize);
        const uint64_t end = align_down(regions[i].base + regions[i].size, kPageSize);
        if (end <= start) continue;
        metadata_needed[i] = BuddyAllocator::metadata_bytes(start, end);
        total_metadata += abi::align_up(metadata_needed[i], 64) + abi::align_up((end - start) >> kPageShift, 64);
    }
    uint64_t metadata = carve_from_usable(regions, count, total_metadata);
    for (uint32_t i = 0; i < count; ++i) {
        if (!metadata_needed[i]) continue;
        if (zone.area_count == kMaxAreasPerZone) panic("too many RAM regions for one zone");
        // The area keeps the region's original extent (metadata is sized for it); only the part
        // that is still usable after carving is made free.
        Area& area = zone.areas[zone.area_count++];
        const uint64_t start = abi::align_up(boot_info.memory_regions[i].base, kPageSize);
        const uint64_t end = align_down(boot_info.memory_regions[i].base + boot_info.memory_regions[i].size, kPageSize);
        area.buddy.init(start, end, reinterpret_cast<uint8_t*>(metadata));
        metadata += abi::align_up(metadata_needed[i], 64);
        area.tags = reinterpret_cast<uint8_t*>(metadata);  // zeroed as pages are allocated
        metadata += abi::align_up((end - start) >> kPageShift, 64);
        area.buddy.add_free_range(abi::align_up(regions[i].base, kPageSize), end);
    }
}

namespace {

uint64_t take_from_cache(PageCache& cache) {
    if (cache.count == 0) refill(cache);
    if (cache.count == 0) return 0;
    const uint64_t page = cache.pages[--cache.count];
    Area* area = area_owning(page);
    area->buddy.unmark_cached(page);
    area->tag(page) = 0;
    return page;
}

uint64_t try_allocate(uint32_t order) {
    if (order == 0) {
        platform::InterruptsDisabled no_interrupts;  // the cache is this CPU's
        PageCache& cache = allocator.caches[this_cpu().index];
        SpinLockGuard guard(cache.lock);
        return take_from_cache(cache);
    }
    Zone& zone = home_zone();
    IrqSpinLockGuard guard(zone.lock);
    return zone.allocate_locked(order);
}

}  // namespace

uint64_t allocate_pages(uint32_t order) {
    if (uint64_t address = try_allocate(order)) return address;
    drain_every_cache();  // the zones are out of blocks: take back what the CPU caches hold
    return try_allocate(order);
}

void free_pages(uint64_t physical_address, uint32_t order) {
    if (order == 0) {
        platform::InterruptsDisabled no_interrupts;
        PageCache& cache = allocator.caches[this_cpu().index];
        SpinLockGuard cache_guard(cache.lock);
        Area* area = area_owning(physical_address);
        if (!area || !area->buddy.mark_cached(physical_address))  // catches double frees before caching
            panic("free_pages(%#lx, order 0): not an allocated single page", physical_address);
        if (cache.count == kCacheCapacity) drain(cache, kCacheCapacity - kCacheBatch);
        cache.pages[cache.count++] = physical_address;
        return;
    }
    Zone& zone = home_zone();
    IrqSpinLockGuard guard(zone.lock);
    free_to_zone_locked(zone, physical_address, order);
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

PageStats page_stats() {
    PageStats stats{};
    stats.zone_count = allocator.zone_count;
    for (uint32_t z = 0; z < allocator.zone_count; ++z) {
        Zone& zone = allocator.zones[z];
        IrqSpinLockGuard guard(zone.lock);
        for (uint32_t i = 0; i < zone.area_count; ++i) {
            const BuddyAllocator& buddy = zone.areas[i].buddy;
            stats.managed_pages += buddy.managed_pages();
            stats.free_pages += buddy.free_pages();
            for (uint32_t order = 0; order <= kMaxOrder; ++order) stats.free_blocks[order] += buddy.free_blocks(order);
        }
    }
    for (const PageCache& cache : allocator.caches) stats.cached_pages += __atomic_load_n(&cache.count, __ATOMIC_RELAXED);
    stats.free_pages += stats.cached_pages;
    return stats;
}

void drain_page_cache() { drain_every_cache(); }

bool page_allocator_consistent() {
    for (uint32_t z = 0; z < allocator.zone_count; ++z) {
        Zone& zone = allocator.zones[z];
        IrqSpinLockGuard guard(zone.lock);
        for (uint32_t i = 0; i < zone.area_count; ++i)
            if (!zone.areas[i].buddy.check_consistency()) return false;
    }
    return true;
}

}  // namespace hvkvm::guest::mm
