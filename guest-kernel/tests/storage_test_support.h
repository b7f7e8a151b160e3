// What the storage tests (and bench=io) share: heap buffers and the sector pattern.
#pragma once

#include <stdint.h>

#include "lib/disk_pattern.h"
#include "mm/heap.h"

namespace hvkvm::guest::test {

// Heap memory for I/O (large heap blocks are physically contiguous); freed with the object.
class HeapBuffer {
public:
    explicit HeapBuffer(uint64_t bytes, uint64_t alignment = 4096)
        : data_(static_cast<uint8_t*>(mm::allocate(bytes, alignment))) {}
    ~HeapBuffer() { mm::free(data_); }
    HeapBuffer(const HeapBuffer&) = delete;
    HeapBuffer& operator=(const HeapBuffer&) = delete;
    uint8_t* data() const { return data_; }
    bool ok() const { return data_ != nullptr; }

private:
    uint8_t* data_;
};

// `sectors` sectors of disk_pattern for disk sectors first_sector.. into `bytes`.
void fill_pattern(uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed);
bool check_pattern(const uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed);
// Every sector either the pattern or all zeros (never written).
bool check_pattern_or_zero(const uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed);

}  // namespace hvkvm::guest::test
