#include "vmbus/ring/ring_memory.h"

namespace hvkvm::vmbus::ring {

void ContiguousRingMemory::read(uint32_t offset, void* destination, uint32_t size) const {
    __builtin_memcpy(destination, data_ + offset, size);
}

void ContiguousRingMemory::write(uint32_t offset, const void* source, uint32_t size) {
    __builtin_memcpy(data_ + offset, source, size);
}

void PagedRingMemory::read(uint32_t offset, void* destination, uint32_t size) const {
    auto* out = static_cast<uint8_t*>(destination);
    while (size != 0) {
        const uint32_t in_page = offset % kDataPageSize;
        const uint32_t chunk = size < kDataPageSize - in_page ? size : kDataPageSize - in_page;
        __builtin_memcpy(out, pages_[offset / kDataPageSize] + in_page, chunk);
        out += chunk;
        offset += chunk;
        size -= chunk;
    }
}

void PagedRingMemory::write(uint32_t offset, const void* source, uint32_t size) {
    const auto* in = static_cast<const uint8_t*>(source);
    while (size != 0) {
        const uint32_t in_page = offset % kDataPageSize;
        const uint32_t chunk = size < kDataPageSize - in_page ? size : kDataPageSize - in_page;
        __builtin_memcpy(pages_[offset / kDataPageSize] + in_page, in, chunk);
        in += chunk;
        offset += chunk;
        size -= chunk;
    }
}

}  // namespace hvkvm::vmbus::ring
