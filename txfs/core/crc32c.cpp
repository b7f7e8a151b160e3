#include "core/crc32c.h"

namespace txfs {
namespace {

constexpr uint32_t kPolynomial = 0x82f63b78u;  // reflected Castagnoli polynomial

struct Tables {
    uint32_t entry[8][256];
};

constexpr Tables make_tables() {
    Tables tables{};
    for (uint32_t byte = 0; byte < 256; ++byte) {
        uint32_t crc = byte;
        for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? kPolynomial : 0);
        tables.entry[0][byte] = crc;
    }
    for (uint32_t byte = 0; byte < 256; ++byte)
        for (int slice = 1; slice < 8; ++slice)
            tables.entry[slice][byte] =
                (tables.entry[slice - 1][byte] >> 8) ^ tables.entry[0][tables.entry[slice - 1][byte] & 0xff];
    return tables;
}

constexpr Tables kTables = make_tables();

uint32_t load_u32(const uint8_t* p) {
    return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

uint32_t crc32c(const void* data, size_t length, uint32_t crc) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    crc = ~crc;
    const auto& t = kTables.entry;
    while (length >= 8) {
        const uint32_t low = load_u32(p) ^ crc;
        const uint32_t high = load_u32(p + 4);
        crc = t[7][low & 0xff] ^ t[6][(low >> 8) & 0xff] ^ t[5][(low >> 16) & 0xff] ^ t[4][low >> 24] ^
              t[3][high & 0xff] ^ t[2][(high >> 8) & 0xff] ^ t[1][(high >> 16) & 0xff] ^ t[0][high >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

uint32_t crc32c_with_zero_field(const void* data, size_t length, size_t field_offset) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    const uint8_t zero[4] = {};
    uint32_t crc = crc32c(p, field_offset);
    crc = crc32c(zero, 4, crc);
    return crc32c(p + field_offset + 4, length - field_offset - 4, crc);
}

}  // namespace txfs
