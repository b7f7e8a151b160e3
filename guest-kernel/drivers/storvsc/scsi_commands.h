// The SCSI side of storvsc, without channels: the CDBs the driver sends and what an EXECUTE_SRB
// completion means for the block layer. Opcodes and sense codes come from the target's own
// definitions (storage/scsi/scsi_defs.h, header-only and freestanding).
#pragma once

#include <stdint.h>

#include "block/block.h"
#include "drivers/storvsc/storvsc.h"

namespace hvkvm::guest::storvsc::scsi_commands {

inline constexpr uint32_t kInquiryBytes = 36;
inline constexpr uint32_t kReadCapacity16Bytes = 32;
inline constexpr uint32_t kReadCapacity16Needed = 12;  // last LBA and block length
inline constexpr uint32_t kModeSense6Bytes = 4;  // the header: device-specific parameter (WP) in byte 2
inline constexpr uint32_t kReportLunsBytes = 8 + 8 * 256;

// Each fills `cdb` (16 bytes, zeroed first) and returns the CDB's length.
uint8_t read_write16(uint8_t* cdb, bool write, bool fua, uint64_t lba, uint32_t blocks);
uint8_t synchronize_cache10(uint8_t* cdb);
uint8_t inquiry(uint8_t* cdb, uint16_t allocation);
uint8_t read_capacity16(uint8_t* cdb, uint32_t allocation);
uint8_t report_luns(uint8_t* cdb, uint32_t allocation);
uint8_t mode_sense6(uint8_t* cdb, uint8_t allocation);

// REPORT LUNS data (`bytes` of it moved): the LUNs (peripheral addressing, bus 0), at most
// `capacity`; how many.
uint32_t parse_report_luns(const uint8_t* data, uint32_t bytes, uint8_t* luns, uint32_t capacity);
// READ CAPACITY(16) data.
struct Capacity {
    uint64_t blocks;
    uint32_t block_bytes;
};
Capacity parse_read_capacity16(const uint8_t* data);
// INQUIRY data: a connected direct-access block device.
bool is_disk(const uint8_t* inquiry_data);
// MODE SENSE(6) header: write protected.
bool write_protected(const uint8_t* mode_header);

// An EXECUTE_SRB completion for a request that expected `expected_bytes` to move.
struct Outcome {
    block::IoStatus status;
    uint32_t detail;  // Io::device_error (storvsc.h)
    bool has_sense;
    uint8_t sense_key, asc, ascq;
};
Outcome interpret(const wire::Packet& answer, uint32_t answer_size, uint32_t expected_bytes);

}  // namespace hvkvm::guest::storvsc::scsi_commands
