// The ATA/IDE wire format shared by the VMM's emulated IDE controller (devices/emulated/ide) and
// the guest's ATA driver (guest-kernel/drivers/ata): task-file register offsets and bits, the
// commands the controller implements, the IDENTIFY DEVICE words it fills, and the PIIX-style
// bus-master registers with their physical region descriptor (PRD). Facts from ATA8-ACS and the
// Intel PIIX datasheet; where the controller lives (ports, IOAPIC pin) is in devices.h.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::abi::ata {

inline constexpr uint32_t kSectorSize = 512;
inline constexpr uint32_t kIdentifyWords = 256;

// ---------------------------------------------------------------------------------------------
// Command block registers (offsets from the command block base, 0x1f0 on the primary channel).
// ---------------------------------------------------------------------------------------------
enum Register : uint16_t {
    kData = 0,         // 16-bit (or 32-bit) PIO data
    kErrorFeature = 1,  // read: error; write: features
    kSectorCount = 2,
    kLbaLow = 3,
    kLbaMid = 4,
    kLbaHigh = 5,
    kDevice = 6,       // DEV bit and LBA 27:24
    kStatusCommand = 7,  // read: status (clears a pending interrupt); write: command
};
inline constexpr uint16_t kCommandBlockPorts = 8;
// The control block register (one port, 0x3f6 on the primary channel): read alternate status
// (no side effects), write device control.
inline constexpr uint16_t kControlBlockPorts = 1;

enum Status : uint8_t {
    kStatusErr = 1u << 0,   // the command failed: see the error register
    kStatusDrq = 1u << 3,   // the device wants a PIO data block moved
    kStatusDf = 1u << 5,    // device fault
    kStatusDrdy = 1u << 6,  // ready for a command
    kStatusBsy = 1u << 7,   // busy: every other bit is meaningless
};

enum Error : uint8_t {
    kErrorAbrt = 1u << 2,  // command aborted (unsupported, bad parameter, refused write)
    kErrorIdnf = 1u << 4,  // the address is beyond the device
    kErrorUnc = 1u << 6,   // uncorrectable data error (the host read failed)
};

// Device register.
inline constexpr uint8_t kDeviceSlave = 1u << 4;   // DEV: 0 master, 1 slave
inline constexpr uint8_t kDeviceLba = 1u << 6;     // LBA (not CHS) addressing
inline constexpr uint8_t kDeviceObsolete = 0xa0;   // bits 7 and 5, set by convention

// Device control register.
enum DeviceControl : uint8_t {
    kControlNien = 1u << 1,  // no interrupts from the selected device
    kControlSrst = 1u << 2,  // software reset of both devices while set
    kControlHob = 1u << 7,   // reads return the previous (high-order) bytes of the LBA48 registers
};

enum Command : uint8_t {
    kCommandReadSectors = 0x20,
    kCommandReadSectorsExt = 0x24,
    kCommandReadDmaExt = 0x25,
    kCommandWriteSectors = 0x30,
    kCommandWriteSectorsExt = 0x34,
    kCommandWriteDmaExt = 0x35,
    kCommandReadDma = 0xc8,
    kCommandWriteDma = 0xca,
    kCommandFlushCache = 0xe7,
    kCommandFlushCacheExt = 0xea,
    kCommandIdentifyDevice = 0xec,
    kCommandSetFeatures = 0xef,
};

// SET FEATURES subcommands (features register) the controller accepts.
enum Feature : uint8_t {
    kFeatureEnableWriteCache = 0x02,
    kFeatureSetTransferMode = 0x03,  // mode in the sector count register
    kFeatureDisableWriteCache = 0x82,
};
// Transfer modes for kFeatureSetTransferMode: (kind | mode number).
inline constexpr uint8_t kTransferModePioDefault = 0x00;
inline constexpr uint8_t kTransferModePioFlowControl = 0x08;  // PIO modes 0..4
inline constexpr uint8_t kTransferModeMultiwordDma = 0x20;    // MWDMA modes 0..2
inline constexpr uint8_t kTransferModeUltraDma = 0x40;        // UDMA modes 0..5

// Sector counts: 0 means the maximum.
inline constexpr uint32_t kMaxSectorsLba28 = 256;
inline constexpr uint32_t kMaxSectorsLba48 = 65536;
inline constexpr uint64_t kLba28Limit = uint64_t{1} << 28;  // addressable sectors with 28-bit commands
inline constexpr uint64_t kLba48Limit = uint64_t{1} << 48;

// ---------------------------------------------------------------------------------------------
// IDENTIFY DEVICE: the words the controller fills (little-endian 16-bit words; strings are ASCII,
// two characters per word with the first in the high byte, padded with spaces).
// ---------------------------------------------------------------------------------------------
enum IdentifyWord : uint16_t {
    kIdGeneralConfig = 0,       // bit 15 = 0: ATA device
    kIdSerialNumber = 10,       // 10 words: 20 characters
    kIdFirmwareRevision = 23,   // 4 words: 8 characters
    kIdModelNumber = 27,        // 20 words: 40 characters
    kIdMaxMultiple = 47,        // 0x8000 | sectors per READ/WRITE MULTIPLE (0: not supported)
    kIdCapabilities = 49,       // bit 9 LBA, bit 8 DMA
    kIdValidFields = 53,        // bit 1: words 64-70 valid, bit 2: word 88 valid
    kIdLba28Sectors = 60,       // 2 words: addressable sectors with 28-bit commands
    kIdMultiwordDma = 63,       // bits 0-2 modes supported, bits 8-10 mode selected
    kIdPioModes = 64,           // bit 0 mode 3, bit 1 mode 4
    kIdMinDmaCycle = 65,        // ns
    kIdRecommendedDmaCycle = 66,
    kIdMinPioCycle = 67,
    kIdMinPioCycleIordy = 68,
    kIdMajorVersion = 80,       // bit n: ATA/ATAPI-n supported
    kIdCommandSets1 = 82,       // bit 5 write cache
    kIdCommandSets2 = 83,       // bit 14 must be 1; bit 13 FLUSH CACHE EXT, 12 FLUSH CACHE, 10 48-bit
    kIdCommandSetsExt = 84,     // bit 14 must be 1
    kIdEnabled1 = 85,           // as word 82, enabled
    kIdEnabled2 = 86,           // as word 83, enabled
    kIdEnabledExt = 87,         // bit 14 must be 1
    kIdUltraDma = 88,           // bits 0-5 modes supported, bits 8-13 mode selected
    kIdLba48Sectors = 100,      // 4 words: addressable sectors with 48-bit commands
    kIdSectorSize = 106,        // bit 14 = 1: valid; bit 12 = 0: 512-byte logical sectors
    kIdIntegrity = 255,         // 0xa5 in the low byte, checksum (all 512 bytes sum to 0) in the high
};
inline constexpr uint16_t kIdCapabilityLba = 1u << 9;
inline constexpr uint16_t kIdCapabilityDma = 1u << 8;
inline constexpr uint16_t kIdWriteCache = 1u << 5;
inline constexpr uint16_t kIdFlushCache = 1u << 12;
inline constexpr uint16_t kIdFlushCacheExt = 1u << 13;
inline constexpr uint16_t kIdLba48 = 1u << 10;
inline constexpr uint16_t kIdWordValid = 1u << 14;  // words 83, 84, 86 (sic), 87, 106
inline constexpr uint8_t kIdIntegritySignature = 0xa5;
inline constexpr uint32_t kIdSerialChars = 20;
inline constexpr uint32_t kIdModelChars = 40;

// ---------------------------------------------------------------------------------------------
// PIIX-style bus-master DMA registers of one channel (offsets from its bus-master base).
// ---------------------------------------------------------------------------------------------
enum BusMasterRegister : uint16_t {
    kBmCommand = 0,     // 8-bit
    kBmStatus = 2,      // 8-bit
    kBmPrdTable = 4,    // 32-bit: physical address of the PRD table, dword aligned
};
inline constexpr uint16_t kBusMasterPorts = 8;

enum BusMasterCommand : uint8_t {
    kBmStart = 1u << 0,        // 1: the engine runs the PRD table; 0: stops it
    kBmToMemory = 1u << 3,     // direction: 1 device -> memory (a read command), 0 memory -> device
};

enum BusMasterStatus : uint8_t {
    kBmActive = 1u << 0,       // the engine is running
    kBmError = 1u << 1,        // a PRD table or buffer was unusable (write 1 to clear)
    kBmInterrupt = 1u << 2,    // the device raised its interrupt (write 1 to clear)
    kBmDrive0Dma = 1u << 5,    // set by the driver: device 0 may do DMA
    kBmDrive1Dma = 1u << 6,
};

// One physical region descriptor: a buffer in guest RAM. The table is an array of them ending at
// the first entry with kPrdEndOfTable.
struct PrdEntry {
    uint32_t base;        // physical address, even
    uint16_t byte_count;  // even; 0 means 64 KiB
    uint16_t flags;
};
inline constexpr uint16_t kPrdEndOfTable = 1u << 15;
inline constexpr uint32_t kPrdMaxBytes = 0x10000;
// A PRD table may not cross a 64 KiB boundary (as on PIIX), so it holds at most this many entries;
// the controller reads no further.
inline constexpr uint32_t kPrdTableBoundary = 0x10000;
inline constexpr uint32_t kPrdTableMaxEntries = kPrdTableBoundary / 8;

static_assert(sizeof(PrdEntry) == 8);
static_assert(offsetof(PrdEntry, base) == 0);
static_assert(offsetof(PrdEntry, byte_count) == 4);
static_assert(offsetof(PrdEntry, flags) == 6);
static_assert(kPrdTableMaxEntries == 8192);
static_assert(kMaxSectorsLba48 * uint64_t{kSectorSize} == 32u << 20);

}  // namespace hvkvm::abi::ata
