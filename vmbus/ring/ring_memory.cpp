#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::ring {

void ContiguousRingMemory::read(uint32_t offset, void* destination, uint32_t size) const {
    __builtin_memcpy(destination, data_ + offset, size);
}

void ContiguousRingMemory::write(uint32_t offset, const void* source, uint32_t size) {
    __builtin_memcpy(data_ + offset, source, size);
}

// Calls copy(page_bytes, buffer_offset, chunk) for each piece of [offset, offset + size) that lies
// in one data page.
template <typename Copy>
void PagedRingMemory::for_each_page_piece(uint32_t offset, uint32_t size, Copy copy) const {
    uint32_t done = 0;
    while (done < size) {
        const uint32_t in_page = offset % kDataPageSize;
        const uint32_t left = size - done;
        const uint32_t chunk = left < kDataPageSize - in_page ? left : kDataPageSize - in_page;
        copy(pages_[offset / kDataPageSize] + in_page, done, chunk);
        offset += chunk;
        done += chunk;
    }
}

void PagedRingMemory::read(uint32_t offset, void* destination, uint32_t size) const {
    auto* out = static_cast<uint8_t*>(destination);
    for_each_page_piece(offset, size, [&](const uint8_t* page, uint32_t at, uint32_t chunk) {
        __builtin_memcpy(out + at, page, chunk);
    });
}

void PagedRingMemory::write(uint32_t offset, const void* source, uint32_t size) {
    const auto* in = static_cast<const uint8_t*>(source);
    for_each_page_piece(offset, size, [&](uint8_t* page, uint32_t at, uint32_t chunk) {
        __builtin_memcpy(page, in + at, chunk);
    });
}

}  // namespace hvkvm::vmbus::ring
