#include "mm/paging.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "hvkvm/abi/align.h"
#include "mm/tlb.h"
#include "kernel/panic.h"
#include "kernel/sync/spinlock.h"
#include "lib/string.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"

extern "C" char __text_start[], __text_end[], __rodata_start[], __rodata_end[], __data_start[];

namespace hvkvm::guest::mm {
namespace {

constexpr uint64_t kPresent = 1ull << 0, kWritable = 1ull << 1, kUser = 1ull << 2;
constexpr uint64_t kWriteThrough = 1ull << 3, kCacheDisable = 1ull << 4, kLargePage = 1ull << 7;
constexpr uint64_t kNoExecute = 1ull << 63;
// Software bit (ignored by the MMU) in a non-present leaf: the page is being migrated to another
// node; the address field still holds its old frame. Accesses fault and wait (migration.h).
constexpr uint64_t kMigrating = 1ull << 9;
constexpr uint64_t kAddressMask = 0x000ffffffffff000ull;
constexpr uint64_t kTableFlags = kPresent | kWritable | kUser;  // PVM: U/S=1 at every level
constexpr uint64_t kLargePageBytes = 2ull << 20;
constexpr uint64_t kGuardBytes = kPageSize;
constexpr uint32_t kMaxRecycledStackSlots = 4096;
constexpr uint32_t kStaleSlotBatch = 64;

// Each node's stacks come from its own part of the stack region, so that the page tables mapping
// them (allocated on the node of the memory they map) serve one node's stacks only.
constexpr uint64_t kStackNodeSpan = (kStackRegionEnd - kStackRegionStart) / numa::kMaxNodes;

// The kernel address space (one per VM) and the stack-slot allocator. A freed stack's slot is
// "stale" until every CPU's TLB has forgotten it; stale slots are flushed in batches and only then
// reused, so that thread exits do not each cost an IPI round to every CPU.
struct AddressSpace {
    SpinLock lock;
    uint64_t* root = nullptr;
    uint64_t stack_slots_used[numa::kMaxNodes] = {};  // bump allocation within each node's span
    uint64_t recycled_slots[kMaxRecycledStackSlots];
    uint32_t recycled_count = 0;
    uint64_t stale_slots[kStaleSlotBatch];
    uint32_t stale_count = 0;
    uint64_t table_pages = 0;
} space;

uint64_t* table_at(uint64_t entry) { return reinterpret_cast<uint64_t*>(entry & kAddressMask); }
uint32_t index_at(uint64_t virtual_address, uint32_t level) {  // level 3 = PML4 .. 0 = PT
    return (virtual_address >> (12 + 9 * level)) & 511;
}

uint64_t leaf_flags(uint32_t flags, PageSize size) {
    uint64_t bits = kPresent | kUser;
    if (flags & kMapWritable) bits |= kWritable;
    if (!(flags & kMapExecutable)) bits |= kNoExecute;
    if (flags & kMapUncached) bits |= kCacheDisable | kWriteThrough;
    if (size == PageSize::k2MiB) bits |= kLargePage;
    return bits;
}

// Page tables live on the node of the memory they map (the SRAT's node of a RAM page, the
// running thread's ideal node for anything else), so that a CPU walking to its node's memory
// reads its own node's tables. Stacks and mapped regions name their node instead: the node their
// pages are meant for, even if one of them had to come from elsewhere.
uint32_t table_node_for(uint64_t physical_address) {
    const uint32_t node = srat_node_of(physical_address);
    return node != kNoNode ? node : this_cpu().memory_node;
}

// A table goes on its node even below the node's low watermark (it is small, and the walks of
// everything it will map depend on it); only a node with no free page at all sends it elsewhere.
uint64_t* allocate_table(uint32_t node) {
    uint64_t page = allocate_pages_on_node(0, node, NodePolicy::kOnly);
    if (!page) page = allocate_pages_on_node(0, node, NodePolicy::kPreferred);
    if (!page) return nullptr;
    ++space.table_pages;  // callers hold the address-space lock (or run alone at boot)
    memset(reinterpret_cast<void*>(page), 0, kPageSize);
    return reinterpret_cast<uint64_t*>(page);
}

// The entry that maps `virtual_address` at the level of `size`, creating intermediate tables
// as needed (or not: then nullptr if one is missing). Also nullptr if a large page is in the way.
uint64_t* walk(uint64_t virtual_address, PageSize size, bool create, uint32_t table_node = 0) {
    const uint32_t leaf_level = size == PageSize::k2MiB ? 1 : 0;
    uint64_t* table = space.root;
    for (uint32_t level = 3; level > leaf_level; --level) {
        uint64_t& entry = table[index_at(virtual_address, level)];
        if (!(entry & kPresent)) {
            if (!create) return nullptr;
            uint64_t* next = allocate_table(table_node);
            if (!next) return nullptr;
            entry = reinterpret_cast<uint64_t>(next) | kTableFlags;
        } else if (entry & kLargePage) {
            return nullptr;
        }
        table = table_at(entry);
    }
    return &table[index_at(virtual_address, leaf_level)];
}

bool map_locked(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags, uint32_t table_node) {
    uint64_t* entry = walk(virtual_address, size, true, table_node);
    // A present entry (a page, or for 2 MiB a table of 4 KiB pages) means the range is in use.
    if (!entry || (*entry & kPresent)) return false;
    *entry = physical_address | leaf_flags(flags, size);
    return true;
}

// Identity-maps [start, end) with the largest pages alignment allows.
void map_identity(uint64_t start, uint64_t end, uint32_t flags) {
    uint64_t address = start;
    while (address < end) {
        const bool large = (address % kLargePageBytes) == 0 && address + kLargePageBytes <= end;
        const PageSize size = large ? PageSize::k2MiB : PageSize::k4KiB;
        if (!map_locked(address, address, size, flags, table_node_for(address))) panic("cannot identity-map %#lx", address);
        address += large ? kLargePageBytes : kPageSize;
    }
}

uint64_t page_align_down(uint64_t value) { return abi::align_down(value, kPageSize); }
uint64_t page_align_up(uint64_t value) { return abi::align_up(value, kPageSize); }

// The platform's fixed MMIO pages: the local APIC (used in xAPIC mode) and the IOAPIC.
void map_platform_mmio() {
    static constexpr uint64_t kPages[] = {abi::kLocalApicGpa, abi::kIoApicGpa};
    for (uint64_t page : kPages)
        if (!map_locked(page, page, PageSize::k4KiB, kMapWritable | kMapUncached, table_node_for(page)))
            panic("cannot map the platform MMIO page %#lx", page);
}

void map_kernel_image(uint64_t image_end) {
    const auto text = reinterpret_cast<uint64_t>(__text_start);
    const auto rodata = reinterpret_cast<uint64_t>(__rodata_start);
    const auto data = reinterpret_cast<uint64_t>(__data_start);
    map_identity(text, page_align_up(reinterpret_cast<uint64_t>(__text_end)), kMapExecutable);
    map_identity(rodata, page_align_up(reinterpret_cast<uint64_t>(__rodata_end)), 0);
    map_identity(data, page_align_up(image_end), kMapWritable);
}

}  // namespace

void init_paging(const abi::BootInfo& boot_info) {
    space.root = allocate_table(this_cpu().node);
    if (!space.root) panic("no memory for the kernel's page tables");
    for (uint32_t i = 0; i < boot_info.memory_region_count; ++i) {
        const abi::MemoryRegion& region = boot_info.memory_regions[i];
        const uint64_t start = page_align_down(region.base), end = page_align_up(region.base + region.size);
        switch (region.type) {
        case abi::MemoryType::kUsable:
        case abi::MemoryType::kBootData: map_identity(start, end, kMapWritable); break;
        case abi::MemoryType::kKernelImage: map_kernel_image(end); break;
        default: break;  // reserved: left unmapped
        }
    }
    map_platform_mmio();
    // Build everything first, then switch once: on shadow-paging hosts, writes to page tables
    // that are already in use trap to the host.
    __asm__ volatile("mov %0, %%cr3" : : "r"(reinterpret_cast<uint64_t>(space.root)) : "memory");
}

uint64_t kernel_page_table_root() { return reinterpret_cast<uint64_t>(space.root); }

bool map_page(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags) {
    return map_page(virtual_address, physical_address, size, flags, table_node_for(physical_address));
}

bool map_page(uint64_t virtual_address, uint64_t physical_address, PageSize size, uint32_t flags, uint32_t table_node) {
    if (table_node >= node_count()) table_node = table_node_for(physical_address);
    IrqSpinLockGuard guard(space.lock);
    return map_locked(virtual_address, physical_address, size, flags, table_node);
}

namespace {

// Clears the entry without flushing TLBs; the caller flushes (once for a whole range).
uint64_t unmap_locked(uint64_t virtual_address, PageSize size) {
    uint64_t* entry = walk(virtual_address, size, false);
    const bool large = (size == PageSize::k2MiB);
    if (!entry || !(*entry & kPresent) || (((*entry & kLargePage) != 0) != large)) return 0;
    const uint64_t physical = *entry & kAddressMask & (large ? ~(kLargePageBytes - 1) : ~0ull);
    *entry = 0;
    return physical;
}

}  // namespace

uint64_t unmap_pages(uint64_t virtual_address, uint64_t count, uint64_t* frames) {
    uint64_t unmapped = 0;
    {
        IrqSpinLockGuard guard(space.lock);
        for (uint64_t i = 0; i < count; ++i)
            if (uint64_t frame = unmap_locked(virtual_address + i * kPageSize, PageSize::k4KiB)) frames[unmapped++] = frame;
    }
    if (unmapped) flush_tlb_everywhere(virtual_address, count);
    return unmapped;
}

uint64_t unmap_page(uint64_t virtual_address, PageSize size) {
    uint64_t physical;
    {
        IrqSpinLockGuard guard(space.lock);
        physical = unmap_locked(virtual_address, size);
    }
    if (physical) flush_tlb_everywhere(virtual_address, size == PageSize::k2MiB ? kLargePageBytes / kPageSize : 1);
    return physical;
}

namespace {

// Page tables are never freed, so a walk without the lock is safe to read (it may race a change
// to the very entry it reads, which diagnostics can live with).
uint64_t translate_unlocked(uint64_t virtual_address) {
    const uint64_t* table = space.root;
    for (uint32_t level = 3;; --level) {
        const uint64_t entry = table[index_at(virtual_address, level)];
        if (!(entry & kPresent)) return 0;
        if (level == 0 || (entry & kLargePage)) {
            const uint64_t page_bytes = 1ull << (12 + 9 * level);
            return (entry & kAddressMask & ~(page_bytes - 1)) | (virtual_address & (page_bytes - 1));
        }
        table = table_at(entry);
    }
}

}  // namespace

uint64_t translate(uint64_t virtual_address) {
    IrqSpinLockGuard guard(space.lock);
    return translate_unlocked(virtual_address);
}

uint64_t map_mmio(uint64_t physical_address, uint64_t length) {
    IrqSpinLockGuard guard(space.lock);
    for (uint64_t page = page_align_down(physical_address); page < physical_address + length; page += kPageSize) {
        uint64_t* entry = walk(page, PageSize::k4KiB, true, table_node_for(page));
        if (!entry) panic("cannot map MMIO page %#lx", page);
        if (!(*entry & kPresent)) *entry = page | leaf_flags(kMapWritable | kMapUncached, PageSize::k4KiB);
    }
    return physical_address;
}

namespace {

// Makes every stale slot reusable: one TLB flush on every CPU for the whole batch.
void recycle_stale_slots() {
    uint64_t batch[kStaleSlotBatch];
    uint32_t count;
    {
        IrqSpinLockGuard guard(space.lock);
        count = space.stale_count;
        for (uint32_t i = 0; i < count; ++i) batch[i] = space.stale_slots[i];
        space.stale_count = 0;
    }
    if (count == 0) return;
    flush_whole_tlb_everywhere();
    IrqSpinLockGuard guard(space.lock);
    for (uint32_t i = 0; i < count && space.recycled_count < kMaxRecycledStackSlots; ++i)
        space.recycled_slots[space.recycled_count++] = batch[i];
}

uint64_t stack_span_of(uint32_t node) { return kStackRegionStart + node * kStackNodeSpan; }

// A recycled slot of the node's span (the most recently recycled first), else a new one.
bool take_stack_slot(uint32_t node, uint64_t& slot) {
    IrqSpinLockGuard guard(space.lock);
    const uint64_t span = stack_span_of(node);
    for (uint32_t i = space.recycled_count; i-- > 0;) {
        if (space.recycled_slots[i] - span >= kStackNodeSpan) continue;
        slot = space.recycled_slots[i];
        space.recycled_slots[i] = space.recycled_slots[--space.recycled_count];
        return true;
    }
    if (space.stack_slots_used[node] * kStackSlotBytes + kStackSlotBytes > kStackNodeSpan) return false;
    slot = span + space.stack_slots_used[node]++ * kStackSlotBytes;
    return true;
}

}  // namespace

bool allocate_stack(uint64_t bytes, KernelStack& stack) { return allocate_stack(bytes, stack, this_cpu().memory_node); }

bool allocate_stack(uint64_t bytes, KernelStack& stack, uint32_t node) {
    bytes = page_align_up(bytes);
    if (bytes == 0 || bytes > kStackSlotBytes - kGuardBytes || node >= node_count()) return false;
    uint64_t slot;
    if (!take_stack_slot(node, slot)) return false;
    // The stack occupies the top of its slot; everything below it, the guard page included, stays unmapped.
    stack.top = slot + kStackSlotBytes;
    stack.bottom = stack.top - bytes;
    for (uint64_t page = stack.bottom; page < stack.top; page += kPageSize) {
        const uint64_t frame = allocate_pages_on_node(0, node, NodePolicy::kPreferred);
        if (!frame || !map_page(page, frame, PageSize::k4KiB, kMapWritable, node)) {
            if (frame) free_pages(frame, 0);
            free_stack(KernelStack{page, stack.top});  // releases what was mapped so far, and the slot
            return false;
        }
    }
    return true;
}

void free_stack(const KernelStack& stack) {
    uint64_t frames[kStackSlotBytes / kPageSize];
    uint32_t frame_count = 0;
    {
        IrqSpinLockGuard guard(space.lock);
        for (uint64_t page = stack.bottom; page < stack.top; page += kPageSize)
            if (uint64_t frame = unmap_locked(page, PageSize::k4KiB)) frames[frame_count++] = frame;
    }
    // This CPU forgets the stack now (a use after free here faults); the others at the next batch
    // flush. The frames can go back at once: other CPUs may still hold TLB entries for this
    // stack's addresses, but nothing uses the addresses of a freed stack, and the addresses are
    // not handed out again before the flush.
    for (uint64_t page = stack.bottom; page < stack.top; page += kPageSize) x86::invalidate_page(page);
    for (uint32_t i = 0; i < frame_count; ++i) free_pages(frames[i], 0);
    const uint64_t slot = stack.top - kStackSlotBytes;
    for (;;) {
        {
            IrqSpinLockGuard guard(space.lock);
            if (space.stale_count < kStaleSlotBatch) {
                space.stale_slots[space.stale_count++] = slot;
                return;
            }
        }
        recycle_stale_slots();  // the batch is full: flush it, then there is room
    }
}

uint64_t page_table_pages() { return __atomic_load_n(&space.table_pages, __ATOMIC_RELAXED); }

uint32_t page_tables_of(uint64_t virtual_address, uint64_t (&tables)[4]) {
    IrqSpinLockGuard guard(space.lock);
    const uint64_t* table = space.root;
    uint32_t count = 0;
    for (uint32_t level = 3;; --level) {
        tables[count++] = reinterpret_cast<uint64_t>(table);
        const uint64_t entry = table[index_at(virtual_address, level)];
        if (level == 0 || !(entry & kPresent) || (entry & kLargePage)) return count;
        table = table_at(entry);
    }
}

uint64_t begin_page_migration(uint64_t virtual_address) {
    IrqSpinLockGuard guard(space.lock);
    uint64_t* entry = walk(virtual_address, PageSize::k4KiB, false);
    if (!entry || !(*entry & kPresent)) return 0;
    *entry = (*entry & ~kPresent) | kMigrating;
    return *entry & kAddressMask;
}

void finish_page_migration(uint64_t virtual_address, uint64_t new_frame) {
    IrqSpinLockGuard guard(space.lock);
    uint64_t* entry = walk(virtual_address, PageSize::k4KiB, false);
    if (!entry || !(*entry & kMigrating)) panic("finish_page_migration(%#lx): no migration in progress", virtual_address);
    // A not-present entry is never cached by the TLB, so making it present needs no flush.
    __atomic_store_n(entry, (*entry & ~(kAddressMask | kMigrating)) | new_frame | kPresent, __ATOMIC_RELEASE);
}

PageState page_state(uint64_t virtual_address) {
    // Unlocked: the page-fault path asks while the migrating CPU may hold the lock. Page tables are
    // never freed, so the walk reads valid tables; each entry is read atomically.
    const uint64_t* table = space.root;
    for (uint32_t level = 3; level > 0; --level) {
        const uint64_t entry = __atomic_load_n(&table[index_at(virtual_address, level)], __ATOMIC_ACQUIRE);
        if (!(entry & kPresent)) return PageState::kNotMapped;
        if (entry & kLargePage) return PageState::kPresent;
        table = table_at(entry);
    }
    const uint64_t leaf = __atomic_load_n(&table[index_at(virtual_address, 0)], __ATOMIC_ACQUIRE);
    if (leaf & kPresent) return PageState::kPresent;
    return (leaf & kMigrating) ? PageState::kMigrating : PageState::kNotMapped;
}

bool is_stack_guard_page(uint64_t address) {
    if (address < kStackRegionStart || address >= kStackRegionEnd) return false;
    // Unlocked: the crash path asks, possibly on a CPU that holds the address-space lock.
    return translate_unlocked(address) == 0 && translate_unlocked(page_align_down(address) + kPageSize) != 0;
}

}  // namespace hvkvm::guest::mm
