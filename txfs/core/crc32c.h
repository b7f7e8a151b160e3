// CRC32C (Castagnoli), the checksum on every txfs structure and data block. Table-driven
// (slicing-by-8, tables built at compile time) so it needs no CPU feature the guest may lack.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace txfs {

// Continues a running checksum: crc32c(b, crc32c(a)) == crc32c(a + b). Start with 0.
uint32_t crc32c(const void* data, size_t length, uint32_t crc = 0);

// Checksum of a structure whose `crc` field (at field_offset, 4 bytes) is taken as zero.
uint32_t crc32c_with_zero_field(const void* data, size_t length, size_t field_offset);

}  // namespace txfs
