#include "tests/storage_test_support.h"

#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "lib/string.h"

namespace hvkvm::guest::test {

void fill_pattern(uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed) {
    for (uint32_t i = 0; i < sectors; ++i) disk_pattern::fill_sector(bytes + i * disk_pattern::kSectorBytes, seed, first_sector + i);
}

bool check_pattern(const uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed) {
    for (uint32_t i = 0; i < sectors; ++i)
        if (!disk_pattern::sector_matches(bytes + i * disk_pattern::kSectorBytes, seed, first_sector + i)) return false;
    return true;
}

bool check_pattern_or_zero(const uint8_t* bytes, uint64_t first_sector, uint32_t sectors, uint64_t seed) {
    for (uint32_t i = 0; i < sectors; ++i) {
        const uint8_t* sector = bytes + i * disk_pattern::kSectorBytes;
        bool zero = true;
        for (uint32_t b = 0; b < disk_pattern::kSectorBytes && zero; ++b) zero = sector[b] == 0;
        if (!zero && !disk_pattern::sector_matches(sector, seed, first_sector + i)) return false;
    }
    return true;
}

bool read_header(block::Device& device, disk_pattern::PatternHeader& header) {
    HeapBuffer sector(block::kSectorSize);
    if (block::read(device, 0, 1, sector.data()) != block::IoStatus::kOk) return false;
    memcpy(&header, sector.data(), sizeof header);
    return disk_pattern::header_valid(header);
}

bool read_and_check(block::Device& device, uint64_t seed, uint64_t first, uint64_t count, const uint32_t* sizes,
                    uint32_t size_count) {
    HeapBuffer buffer(2048 * block::kSectorSize);
    uint32_t turn = 0;
    for (uint64_t sector = first; sector < first + count;) {
        uint32_t sectors = sizes[turn++ % size_count];
        if (sector + sectors > first + count) sectors = static_cast<uint32_t>(first + count - sector);
        if (block::read(device, sector, sectors, buffer.data()) != block::IoStatus::kOk) return false;
        if (!check_pattern(buffer.data(), sector, sectors, seed)) return false;
        sector += sectors;
    }
    return true;
}

void write_flush_and_wait_for_kill(block::Device& device, const disk_pattern::PatternHeader& header) {
    const auto sectors = static_cast<uint32_t>(header.guest_sectors);
    HeapBuffer data(uint64_t{sectors} * block::kSectorSize);
    fill_pattern(data.data(), header.guest_first, sectors, header.guest_seed);
    if (block::write(device, header.guest_first, sectors, data.data()) != block::IoStatus::kOk) return;
    if (block::flush(device) != block::IoStatus::kOk) return;
    kprint("storage: %u sectors written and flushed; waiting to be killed\n", sectors);
    // Unflushed writes elsewhere until the kill comes (the host checks only the flushed region).
    const uint64_t scratch = header.guest_first + header.guest_sectors;
    const uint64_t deadline = time::now_ns() + 60'000'000'000ull;
    while (time::now_ns() < deadline) {
        if (block::write(device, scratch, 64, data.data()) != block::IoStatus::kOk) return;
        sched::sleep_ns(1'000'000);
    }
}

}  // namespace hvkvm::guest::test
