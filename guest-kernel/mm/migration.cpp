#include "mm/migration.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "kernel/panic.h"
#include "kernel/sync/cross_call.h"
#include "kernel/sync/spinlock.h"
#include "lib/string.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"
#include "mm/paging.h"
#include "mm/tlb.h"

namespace hvkvm::guest::mm {
namespace {

// Pages moved under one TLB flush (one IPI round): a run of adjacent misplaced pages.
constexpr uint32_t kBatchPages = 16;

// Each node's regions are mapped in their own part of the range, so that the page tables mapping
// them (allocated on the node of the memory they map) serve one node's regions, as for stacks.
// Tables stay where they are when a region's pages migrate.
constexpr uint64_t kRegionNodeSpan = (kMappedRegionEnd - kMappedRegionStart) / numa::kMaxNodes;

// Every mapped region, for the migration passes, and the virtual addresses handed out (never
// reused: 1 TiB per node). Regions are not moved while pinned by a pass; unmap waits for the pin
// to go. One pass runs at a time (`pass_running`).
struct RegionRegistry {
    SpinLock lock;
    IntrusiveList<MappedRegion, &MappedRegion::registry_link> regions;
    uint64_t bytes_used[numa::kMaxNodes] = {};
    bool pass_running = false;
    uint64_t region_pages = 0;
    void (*wakeup)() = nullptr;
    // Statistics (written under the lock or atomically).
    uint64_t migrated = 0;
    uint64_t passes = 0;
    uint64_t largest_pass = 0;
    uint64_t blocked = 0;
    uint64_t fault_waits = 0;
} registry;

uint64_t page_address(const MappedRegion& region, uint64_t index) { return region.base + index * kPageSize; }

uint32_t node_of_page(uint64_t virtual_address) { return node_of_address(translate(virtual_address)); }

void wake_migration() {
    if (void (*wakeup)() = __atomic_load_n(&registry.wakeup, __ATOMIC_ACQUIRE)) wakeup();
}

bool reserve_addresses(MappedRegion& region, uint32_t node) {
    IrqSpinLockGuard guard(registry.lock);
    const uint64_t span = (region.pages + 1) * kPageSize;  // and an unmapped page after it
    if (region.pages >= kRegionNodeSpan / kPageSize || registry.bytes_used[node] + span > kRegionNodeSpan) return false;
    region.base = kMappedRegionStart + node * kRegionNodeSpan + registry.bytes_used[node];
    registry.bytes_used[node] += span;
    return true;
}

// Unmaps pages [0, count) and frees their frames, one TLB flush per chunk.
void release_pages(const MappedRegion& region, uint64_t count) {
    constexpr uint64_t kChunk = 64;
    uint64_t frames[kChunk];
    for (uint64_t first = 0; first < count; first += kChunk) {
        const uint64_t pages = count - first < kChunk ? count - first : kChunk;
        const uint64_t unmapped = unmap_pages(page_address(region, first), pages, frames);
        for (uint64_t i = 0; i < unmapped; ++i) free_pages(frames[i], 0);
    }
}

// Moves pages [first, first + count) of `region` (all misplaced, adjacent) to `home`. Returns how
// many moved: fewer if the home node reached its low watermark.
uint64_t move_run(const MappedRegion& region, uint64_t first, uint64_t count, uint32_t home) {
    uint64_t new_frames[kBatchPages];
    uint64_t old_frames[kBatchPages];
    uint64_t moving = 0;
    while (moving < count) {
        const uint64_t frame = allocate_pages_on_node(0, home, NodePolicy::kOnlyAboveLowWatermark);
        if (!frame) break;
        new_frames[moving++] = frame;
    }
    if (moving == 0) return 0;
    const uint64_t start = page_address(region, first);
    {
        // Not preemptible from here until the pages are mapped again: a CPU that touches them
        // waits in its page-fault handler for exactly this long.
        platform::InterruptsDisabled no_interrupts;
        for (uint64_t i = 0; i < moving; ++i) {
            old_frames[i] = begin_page_migration(start + i * kPageSize);
            if (!old_frames[i]) panic("migrating %#lx: the page of a pinned region is not mapped", start + i * kPageSize);
        }
        flush_tlb_everywhere(start, moving);  // from now on nobody can write the old frames
        for (uint64_t i = 0; i < moving; ++i)
            memcpy(reinterpret_cast<void*>(new_frames[i]), reinterpret_cast<const void*>(old_frames[i]), kPageSize);
        for (uint64_t i = 0; i < moving; ++i) finish_page_migration(start + i * kPageSize, new_frames[i]);
    }
    for (uint64_t i = 0; i < moving; ++i) free_pages(old_frames[i], 0);
    count_migrated_in(home, moving);
    return moving;
}

// One region's share of a pass: runs of adjacent misplaced pages, each moved under one flush.
void migrate_region(const MappedRegion& region, uint64_t& budget, MigrationPass& pass) {
    const uint32_t home = region_home(region);
    uint64_t index = 0;
    while (index < region.pages) {
        if (node_of_page(page_address(region, index)) == home) {
            ++index;
            continue;
        }
        uint64_t run = 1;
        while (index + run < region.pages && run < kBatchPages && node_of_page(page_address(region, index + run)) != home)
            ++run;
        const uint64_t allowed = run < budget ? run : budget;
        const uint64_t moved = allowed ? move_run(region, index, allowed, home) : 0;
        budget -= moved;
        pass.migrated += moved;
        pass.misplaced_left += run - moved;
        if (moved < allowed) pass.blocked += allowed - moved;
        index += run;
    }
}

}  // namespace

bool map_region(MappedRegion& region, uint64_t bytes, uint32_t home_node) {
    region.pages = (bytes + kPageSize - 1) / kPageSize;
    if (region.pages == 0 || home_node >= node_count() || !reserve_addresses(region, home_node)) return false;
    __atomic_store_n(&region.home_node, home_node, __ATOMIC_RELAXED);
    region.pins = 0;
    bool misplaced = false;
    for (uint64_t i = 0; i < region.pages; ++i) {
        const uint64_t frame = allocate_pages_on_node(0, home_node, NodePolicy::kPreferred);
        if (!frame || !map_page(page_address(region, i), frame, PageSize::k4KiB, kMapWritable, home_node)) {
            if (frame) free_pages(frame, 0);
            release_pages(region, i);
            return false;
        }
        misplaced |= node_of_address(frame) != home_node;
    }
    {
        IrqSpinLockGuard guard(registry.lock);
        registry.regions.push_back(region);
        registry.region_pages += region.pages;
    }
    if (misplaced) wake_migration();
    return true;
}

void unmap_region(MappedRegion& region) {
    for (;;) {
        {
            IrqSpinLockGuard guard(registry.lock);
            if (region.pins == 0) {
                registry.regions.remove(region);
                registry.region_pages -= region.pages;
                break;
            }
        }
        x86::pause();  // a migration pass is moving its pages; it takes microseconds
    }
    release_pages(region, region.pages);
}

void set_region_home(MappedRegion& region, uint32_t node) {
    if (node >= node_count()) panic("set_region_home: node %u does not exist", node);
    __atomic_store_n(&region.home_node, node, __ATOMIC_RELAXED);
    wake_migration();
}

uint32_t region_home(const MappedRegion& region) { return __atomic_load_n(&region.home_node, __ATOMIC_RELAXED); }

uint64_t region_pages_on_node(const MappedRegion& region, uint32_t node) {
    uint64_t pages = 0;
    for (uint64_t i = 0; i < region.pages; ++i) pages += node_of_page(page_address(region, i)) == node;
    return pages;
}

MigrationPass migrate_misplaced_pages(uint64_t budget) {
    // Two passes must not move the same page at once. A pass lasts at most `budget` page copies
    // and their flushes, and its caller is preemptible, so waiting for it by spinning is short.
    while (__atomic_exchange_n(&registry.pass_running, true, __ATOMIC_ACQUIRE)) x86::pause();
    MigrationPass pass{};
    MappedRegion* region;
    {
        IrqSpinLockGuard guard(registry.lock);
        region = registry.regions.front();
        if (region) ++region->pins;
    }
    while (region) {
        migrate_region(*region, budget, pass);
        IrqSpinLockGuard guard(registry.lock);
        MappedRegion* next = registry.regions.next_of(*region);  // still listed: pinned
        --region->pins;
        if (next) ++next->pins;
        region = next;
    }
    {
        IrqSpinLockGuard guard(registry.lock);
        ++registry.passes;
        registry.migrated += pass.migrated;
        registry.blocked += pass.blocked;
        if (pass.migrated > registry.largest_pass) registry.largest_pass = pass.migrated;
    }
    __atomic_store_n(&registry.pass_running, false, __ATOMIC_RELEASE);
    return pass;
}

bool wait_for_migrating_page(uint64_t virtual_address, uint64_t error_code) {
    constexpr uint64_t kProtectionViolation = 1;  // #PF error code bit 0: the page was present
    if (virtual_address < kMappedRegionStart || virtual_address >= kMappedRegionEnd) return false;
    if (error_code & kProtectionViolation) return false;
    const PageState state = page_state(virtual_address);
    // A not-present fault on a page that is present now: the migration finished between the fault
    // and this look. Retry the access.
    if (state == PageState::kPresent) return true;
    if (state != PageState::kMigrating) return false;  // a real fault: unmapped memory
    __atomic_fetch_add(&registry.fault_waits, 1, __ATOMIC_RELAXED);
    // Interrupts are off in the fault handler: keep answering cross-CPU calls, among them the very
    // TLB flush the migrating CPU is waiting for.
    while (page_state(virtual_address) == PageState::kMigrating) {
        smp::serve_cross_calls();
        x86::pause();
    }
    return true;
}

void set_migration_wakeup(void (*wakeup)()) { __atomic_store_n(&registry.wakeup, wakeup, __ATOMIC_RELEASE); }

MigrationStats migration_stats() {
    IrqSpinLockGuard guard(registry.lock);
    return MigrationStats{registry.regions.size(), registry.region_pages, registry.migrated, registry.passes,
                          registry.largest_pass,   registry.blocked,      __atomic_load_n(&registry.fault_waits, __ATOMIC_RELAXED)};
}

}  // namespace hvkvm::guest::mm
