// A SCSI target with block-device logical units, as storvsp presents its disks: the commands a
// Linux or Windows initiator needs to find, size and use a disk (SPC-4, SBC-3), each checked field
// by field. The target decides; it does no I/O. execute() either completes a command at once
// (INQUIRY, MODE SENSE, every error) or returns the block operations to run (READ, WRITE, flush,
// unmap); the caller runs them and hands the outcome to complete_block_io(), which turns host
// errors into sense data.
//
// Served: TEST UNIT READY, INQUIRY (standard, VPD 0x00 0x80 0x83 0xB0 0xB1 0xB2), READ CAPACITY
// (10) and (16), REPORT LUNS, MODE SENSE (6) and (10) (caching and control pages), READ and WRITE
// (10) and (16) with FUA, SYNCHRONIZE CACHE (10) and (16), UNMAP. Anything else: CHECK CONDITION,
// ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE.
//
// Order of checks for a command: the CDB (length, reserved and unsupported fields: INVALID FIELD
// IN CDB with a field pointer), then the request against the CDB (a transfer or allocation length
// beyond the buffer: INVALID FIELD IN CDB at that length; data the wrong way, or a buffer too
// small for a response without an allocation length: a malformed request, not a SCSI error),
// then the LBA range (LBA OUT OF RANGE), then write protection (DATA PROTECT, WRITE PROTECTED).
//
// Dependency-free (no I/O, no logging) so that tests and the fuzzer drive it directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/scsi/data_buffer.h"
#include "storage/scsi/sense.h"

namespace hvkvm::storage::scsi {

inline constexpr uint32_t kBlockSize = 512;
// UNMAP descriptors per command (VPD 0xB0 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT).
inline constexpr uint32_t kMaxUnmapDescriptors = 16;
// Blocks per UNMAP descriptor (VPD 0xB0 MAXIMUM UNMAP LBA COUNT): 2 GiB.
inline constexpr uint32_t kMaxUnmapBlocks = 1u << 22;
// Logical units per target (REPORT LUNS, single-level peripheral addressing).
inline constexpr uint32_t kMaxLuns = 256;

// Which way a command's data buffer goes (storvsp's data_in).
enum class DataDirection : uint8_t { kNone, kToDevice, kFromDevice };

struct Command {
    const uint8_t* cdb;
    uint32_t cdb_length;  // 1..16
    DataDirection direction;
};

struct DiskProperties {
    uint64_t block_count = 0;           // 512-byte blocks, >= 1
    bool read_only = false;
    bool unmap = true;                  // UNMAP punches holes; the disk reads zeros there
    uint32_t max_transfer_bytes = 1u << 20;  // per READ/WRITE, a multiple of kBlockSize
    uint32_t optimal_transfer_blocks = 8;    // granularity the host prefers (4 KiB)
    std::string serial;                 // VPD 0x80 (ASCII, at most 32 characters used)
    uint64_t naa_id = 0;                // VPD 0x83: NAA locally assigned, top nibble forced to 3
};

enum class BlockOpKind : uint8_t { kRead, kWrite, kFlush, kPunchHole };
const char* block_op_name(BlockOpKind kind);

// One host operation: [offset, offset + length) of the disk; reads and writes use the first
// `length` bytes of the command's buffer.
struct BlockOp {
    BlockOpKind kind;
    uint64_t offset = 0;
    uint64_t length = 0;
    bool fua = false;  // writes: durable before completion (RWF_DSYNC)
};

enum class CompletionKind : uint8_t {
    kGood,
    kCheckCondition,     // sense is valid
    kMalformedRequest,   // the request disagrees with its CDB (buffer, direction): not a SCSI error
    kNoSuchLogicalUnit,  // the LUN holds no disk
};

struct Completion {
    CompletionKind kind = CompletionKind::kGood;
    Sense sense;
    uint32_t transferred = 0;  // bytes moved between the buffer and the target

    static Completion good(uint32_t transferred = 0) { return {CompletionKind::kGood, {}, transferred}; }
    static Completion check(const Sense& sense) { return {CompletionKind::kCheckCondition, sense, 0}; }
    static Completion malformed() { return {CompletionKind::kMalformedRequest, {}, 0}; }
    static Completion no_such_lun() { return {CompletionKind::kNoSuchLogicalUnit, {}, 0}; }
    uint8_t status() const { return kind == CompletionKind::kCheckCondition ? kStatusCheckCondition : kStatusGood; }
};

// What execute() decided: a completion now (op_count == 0) or operations to run.
struct Execution {
    Completion completion;
    BlockOp ops[kMaxUnmapDescriptors];
    uint32_t op_count = 0;

    bool needs_io() const { return op_count != 0; }
};

// How the operations went: the first that failed (in op order) and how.
struct BlockIoResult {
    int error = 0;          // 0, or the errno of the failed op
    bool short_transfer = false;  // the op moved fewer bytes than asked (no errno)
    uint32_t failed_op = 0;
    uint64_t bytes_done = 0;  // of the failed op
    bool ok() const { return error == 0 && !short_transfer; }
};

class LogicalUnit {
public:
    explicit LogicalUnit(DiskProperties properties) : properties_(std::move(properties)) {}

    Execution execute(const Command& command, DataBuffer& buffer) const;
    Completion complete_block_io(const Execution& execution, const BlockIoResult& result) const;
    const DiskProperties& properties() const { return properties_; }

private:
    Execution inquiry(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const;
    uint32_t vital_product_data(uint8_t page, uint8_t* out) const;
    Execution read_capacity10(DataBuffer& buffer, DataDirection direction) const;
    Execution read_capacity16(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const;
    Execution mode_sense(const uint8_t* cdb, bool ten, DataBuffer& buffer, DataDirection direction) const;
    Execution read_write(const uint8_t* cdb, bool sixteen, bool write, DataBuffer& buffer, DataDirection direction) const;
    Execution synchronize_cache(const uint8_t* cdb, bool sixteen) const;
    Execution unmap(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const;

    DiskProperties properties_;
};

// The target: LUN n is luns[n] (nullptr: none). Path and target ids are routed by the caller.
class ScsiTarget {
public:
    // At most kMaxLuns; the units must outlive the target.
    explicit ScsiTarget(std::vector<const LogicalUnit*> luns) : luns_(std::move(luns)) {}

    Execution execute(uint32_t lun, const Command& command, DataBuffer& buffer) const;
    const LogicalUnit* unit(uint32_t lun) const { return lun < luns_.size() ? luns_[lun] : nullptr; }

private:
    Execution report_luns(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const;
    Execution absent_unit_inquiry(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const;

    std::vector<const LogicalUnit*> luns_;
};

// A command's CDB checks that do not depend on the unit: a CDB at least as long as its group says
// and a CONTROL byte without NACA or LINK. Returns a completion when the CDB is refused.
bool cdb_is_acceptable(const Command& command, Completion& refusal);

}  // namespace hvkvm::storage::scsi
