#include "mm/heap.h"

#include <new>

#include "arch/x86_64/per_cpu.h"
#include "kernel/panic.h"
#include "kernel/sync/spinlock.h"
#include "mm/node_topology.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest::mm {
namespace {

constexpr uint32_t kClassSizes[] = {16, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048};
constexpr uint32_t kClassCount = sizeof(kClassSizes) / sizeof(kClassSizes[0]);
constexpr uint32_t kLargestClass = 2048;
// Page tags: kTagLarge on the first page of a large allocation, kTagSlabBase + class on slab pages.
constexpr uint8_t kTagLarge = 1;
constexpr uint8_t kTagSlabBase = 2;

struct FreeObject {
    FreeObject* next;
};

struct SizeClass {
    SpinLock lock;
    FreeObject* free_list = nullptr;
    uint64_t slab_pages = 0;
};

// The heap: one per VM, with a pool of size classes per node. A pool holds only objects of its
// own node's pages, so an object's pool follows from its address.
struct Heap {
    SizeClass pools[numa::kMaxNodes][kClassCount];
    uint64_t live_allocations = 0;
    uint64_t total_allocations = 0;
    uint64_t large_pages = 0;
} heap;

bool is_power_of_two(size_t value) { return value && !(value & (value - 1)); }

// The smallest class that holds `size` bytes at `alignment`. Objects of a power-of-two class sit
// at multiples of their size within a page, so such a class is aligned to its size; the others
// only guarantee 16 bytes.
int class_for(size_t size, size_t alignment) {
    for (uint32_t i = 0; i < kClassCount; ++i) {
        const uint32_t object = kClassSizes[i];
        if (object < size) continue;
        if (alignment <= 16 || (is_power_of_two(object) && object >= alignment)) return static_cast<int>(i);
    }
    return -1;
}

uint32_t order_for_bytes(size_t bytes) {
    uint32_t order = 0;
    while ((kPageSize << order) < bytes) ++order;
    return order;
}

void* pop_object(SizeClass& size_class) {
    IrqSpinLockGuard guard(size_class.lock);
    FreeObject* object = size_class.free_list;
    if (object) size_class.free_list = object->next;
    return object;
}

// Carves a fresh page into objects of class `index` in the pool of the page's own node, and
// returns one of them.
void* carve_slab(uint64_t page, uint32_t index) {
    set_page_tag(page, static_cast<uint8_t>(kTagSlabBase + index));
    SizeClass& size_class = heap.pools[node_of_address(page)][index];
    IrqSpinLockGuard guard(size_class.lock);
    const uint32_t object = kClassSizes[index];
    for (uint64_t offset = (kPageSize / object) * object; offset >= object; offset -= object) {
        auto* free_object = reinterpret_cast<FreeObject*>(page + offset - object);
        free_object->next = size_class.free_list;
        size_class.free_list = free_object;
    }
    ++size_class.slab_pages;
    FreeObject* first = size_class.free_list;
    size_class.free_list = first->next;
    return first;
}

// Nearest first: a free object of the node, a fresh page of the node while it is above its low
// watermark, free objects of the other nodes in fallback order, then a fresh page from wherever
// the page allocator finds one.
void* allocate_from_class(uint32_t node, uint32_t index) {
    if (void* object = pop_object(heap.pools[node][index])) return object;
    if (uint64_t page = allocate_pages_on_node(0, node, NodePolicy::kOnlyAboveLowWatermark)) return carve_slab(page, index);
    const numa::NodeOrder& order = fallback_order(node);
    for (uint32_t i = 0; i < order.count; ++i)
        if (order.nodes[i] != node)
            if (void* object = pop_object(heap.pools[order.nodes[i]][index])) return object;
    if (uint64_t page = allocate_pages_on_node(0, node, NodePolicy::kPreferred)) return carve_slab(page, index);
    return nullptr;
}

void* allocate_large(size_t size, size_t alignment, uint32_t node) {
    const uint32_t order = order_for_bytes(size > alignment ? size : alignment);
    if (order > kMaxOrder) return nullptr;
    const uint64_t block = allocate_pages_on_node(order, node, NodePolicy::kPreferred);
    if (!block) return nullptr;
    set_page_tag(block, kTagLarge);
    __atomic_fetch_add(&heap.large_pages, uint64_t{1} << order, __ATOMIC_RELAXED);
    return reinterpret_cast<void*>(block);
}

void* allocate_checked(size_t size, uint32_t node, size_t alignment) {
    if (!is_power_of_two(alignment)) panic("allocate(%zu, %zu): alignment is not a power of two", size, alignment);
    if (size == 0) size = 1;
    const int index = class_for(size, alignment);
    void* pointer =
        index >= 0 ? allocate_from_class(node, static_cast<uint32_t>(index)) : allocate_large(size, alignment, node);
    if (pointer) {
        __atomic_fetch_add(&heap.live_allocations, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&heap.total_allocations, 1, __ATOMIC_RELAXED);
    }
    return pointer;
}

}  // namespace

// The running thread's ideal node always exists.
void* allocate(size_t size, size_t alignment) { return allocate_checked(size, this_cpu().memory_node, alignment); }

void* allocate_on_node(size_t size, uint32_t node, size_t alignment) {
    if (node >= node_count()) panic("allocate(%zu) on node %u: no such node", size, node);
    return allocate_checked(size, node, alignment);
}

void free(void* pointer) {
    if (!pointer) return;
    const auto address = reinterpret_cast<uint64_t>(pointer);
    const uint64_t page = address & ~(kPageSize - 1);
    const PageOwner owner = page_owner(page);
    const uint8_t tag = owner.tag;
    if (tag == kTagLarge && address == page) {
        const int order = allocated_order(page);
        if (order < 0) panic("free(%p): large allocation already freed", pointer);
        set_page_tag(page, 0);
        __atomic_fetch_sub(&heap.large_pages, uint64_t{1} << order, __ATOMIC_RELAXED);
        free_pages(page, static_cast<uint32_t>(order));
    } else if (tag >= kTagSlabBase && tag < kTagSlabBase + kClassCount) {
        const uint32_t index = tag - kTagSlabBase;
        if ((address - page) % kClassSizes[index] != 0) panic("free(%p): not the start of a heap object", pointer);
        SizeClass& size_class = heap.pools[owner.node][index];
        IrqSpinLockGuard guard(size_class.lock);
        auto* object = static_cast<FreeObject*>(pointer);
        object->next = size_class.free_list;
        size_class.free_list = object;
    } else {
        panic("free(%p): not a heap allocation", pointer);
    }
    __atomic_fetch_sub(&heap.live_allocations, 1, __ATOMIC_RELAXED);
}

HeapStats heap_stats() {
    HeapStats stats{};
    stats.live_allocations = __atomic_load_n(&heap.live_allocations, __ATOMIC_RELAXED);
    stats.total_allocations = __atomic_load_n(&heap.total_allocations, __ATOMIC_RELAXED);
    stats.large_pages = __atomic_load_n(&heap.large_pages, __ATOMIC_RELAXED);
    for (const auto& pool : heap.pools)
        for (const SizeClass& size_class : pool) stats.slab_pages += __atomic_load_n(&size_class.slab_pages, __ATOMIC_RELAXED);
    return stats;
}

}  // namespace hvkvm::guest::mm

// --- C++ allocation functions: the kernel has no exceptions, so a failed plain `new` panics. ---
namespace {

void* must_allocate(size_t size, size_t alignment) {
    void* pointer = hvkvm::guest::mm::allocate(size, alignment);
    if (!pointer) hvkvm::guest::panic("out of memory: new of %zu bytes (alignment %zu)", size, alignment);
    return pointer;
}

}  // namespace

void* operator new(size_t size) { return must_allocate(size, 16); }
void* operator new[](size_t size) { return must_allocate(size, 16); }
void* operator new(size_t size, std::align_val_t alignment) { return must_allocate(size, static_cast<size_t>(alignment)); }
void* operator new[](size_t size, std::align_val_t alignment) {
    return must_allocate(size, static_cast<size_t>(alignment));
}
void* operator new(size_t size, const std::nothrow_t&) noexcept { return hvkvm::guest::mm::allocate(size, 16); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return hvkvm::guest::mm::allocate(size, 16); }
void operator delete(void* pointer) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete[](void* pointer) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete(void* pointer, size_t) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete[](void* pointer, size_t) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete(void* pointer, std::align_val_t) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete[](void* pointer, std::align_val_t) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete(void* pointer, size_t, std::align_val_t) noexcept { hvkvm::guest::mm::free(pointer); }
void operator delete[](void* pointer, size_t, std::align_val_t) noexcept { hvkvm::guest::mm::free(pointer); }
