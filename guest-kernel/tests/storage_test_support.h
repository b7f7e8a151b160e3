// What the storage tests (and bench=io) share: heap buffers and the sector pattern.
#pragma once

#include <stdint.h>

#include "block/block.h"
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

// Sector 0 of a test image (tests/integration/disk_pattern_tool.cpp), if it is one.
bool read_header(block::Device& device, disk_pattern::PatternHeader& header);
// Reads [first, first + count) in Ios of the given sizes (cycled), checking the pattern.
bool read_and_check(block::Device& device, uint64_t seed, uint64_t first, uint64_t count, const uint32_t* sizes,
                    uint32_t size_count);
// The flush-then-kill scenario (kFlushKillScenario): writes the guest region, flushes, says so on
// the console, then keeps writing elsewhere until the host kills the VMM. Returns only if the
// host never does (or a write fails).
void write_flush_and_wait_for_kill(block::Device& device, const disk_pattern::PatternHeader& header);

}  // namespace hvkvm::guest::test
