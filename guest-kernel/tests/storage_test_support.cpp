#include "tests/storage_test_support.h"

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

}  // namespace hvkvm::guest::test
