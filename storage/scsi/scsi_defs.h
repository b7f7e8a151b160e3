// SCSI as the target speaks it (SPC-4, SBC-3): operation codes, status, sense keys and additional
// sense codes, and big-endian field access. Only what storage/scsi implements is named here.
#pragma once

#include <cstdint>

namespace hvkvm::storage::scsi {

// Operation codes (byte 0 of the CDB).
inline constexpr uint8_t kTestUnitReady = 0x00;
inline constexpr uint8_t kInquiry = 0x12;
inline constexpr uint8_t kModeSense6 = 0x1a;
inline constexpr uint8_t kReadCapacity10 = 0x25;
inline constexpr uint8_t kRead10 = 0x28;
inline constexpr uint8_t kWrite10 = 0x2a;
inline constexpr uint8_t kSynchronizeCache10 = 0x35;
inline constexpr uint8_t kUnmap = 0x42;
inline constexpr uint8_t kModeSense10 = 0x5a;
inline constexpr uint8_t kRead16 = 0x88;
inline constexpr uint8_t kWrite16 = 0x8a;
inline constexpr uint8_t kSynchronizeCache16 = 0x91;
inline constexpr uint8_t kServiceActionIn16 = 0x9e;
inline constexpr uint8_t kReportLuns = 0xa0;
inline constexpr uint8_t kServiceActionReadCapacity16 = 0x10;  // of SERVICE ACTION IN(16)

// The CDB length an operation code's group implies (SPC-4 4.2.5.1); 0 for the reserved and
// vendor-specific groups.
constexpr uint32_t cdb_length_of(uint8_t opcode) {
    switch (opcode >> 5) {
        case 0: return 6;
        case 1:
        case 2: return 10;
        case 4: return 16;
        case 5: return 12;
        default: return 0;
    }
}

// Status byte.
inline constexpr uint8_t kStatusGood = 0x00;
inline constexpr uint8_t kStatusCheckCondition = 0x02;

// Sense keys.
inline constexpr uint8_t kSenseNoSense = 0x0;
inline constexpr uint8_t kSenseMediumError = 0x3;
inline constexpr uint8_t kSenseHardwareError = 0x4;
inline constexpr uint8_t kSenseIllegalRequest = 0x5;
inline constexpr uint8_t kSenseDataProtect = 0x7;

// Additional sense code and qualifier.
struct AdditionalSense {
    uint8_t asc;
    uint8_t ascq;
    friend constexpr bool operator==(AdditionalSense a, AdditionalSense b) { return a.asc == b.asc && a.ascq == b.ascq; }
};
inline constexpr AdditionalSense kWriteError = {0x0c, 0x00};
inline constexpr AdditionalSense kUnrecoveredReadError = {0x11, 0x00};
inline constexpr AdditionalSense kParameterListLengthError = {0x1a, 0x00};
inline constexpr AdditionalSense kInvalidCommandOperationCode = {0x20, 0x00};
inline constexpr AdditionalSense kLbaOutOfRange = {0x21, 0x00};
inline constexpr AdditionalSense kInvalidFieldInCdb = {0x24, 0x00};
inline constexpr AdditionalSense kLogicalUnitNotSupported = {0x25, 0x00};
inline constexpr AdditionalSense kInvalidFieldInParameterList = {0x26, 0x00};
inline constexpr AdditionalSense kWriteProtected = {0x27, 0x00};
inline constexpr AdditionalSense kSpaceAllocationFailed = {0x27, 0x07};  // thin provisioning ran out
inline constexpr AdditionalSense kSavingParametersNotSupported = {0x39, 0x00};
inline constexpr AdditionalSense kInternalTargetFailure = {0x44, 0x00};

// Big-endian fields of CDBs and parameter data.
constexpr uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
constexpr uint32_t load_be32(const uint8_t* p) {
    return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
constexpr uint64_t load_be64(const uint8_t* p) { return uint64_t{load_be32(p)} << 32 | load_be32(p + 4); }
constexpr void store_be16(uint8_t* p, uint16_t value) {
    p[0] = static_cast<uint8_t>(value >> 8);
    p[1] = static_cast<uint8_t>(value);
}
constexpr void store_be32(uint8_t* p, uint32_t value) {
    store_be16(p, static_cast<uint16_t>(value >> 16));
    store_be16(p + 2, static_cast<uint16_t>(value));
}
constexpr void store_be64(uint8_t* p, uint64_t value) {
    store_be32(p, static_cast<uint32_t>(value >> 32));
    store_be32(p + 4, static_cast<uint32_t>(value));
}

}  // namespace hvkvm::storage::scsi
