#include "storage/scsi/scsi_target.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hvkvm::storage::scsi {
namespace {

constexpr char kVendor[8] = {'h', 'v', 'k', 'v', 'm', ' ', ' ', ' '};
constexpr char kProduct[16] = {'V', 'i', 'r', 't', 'u', 'a', 'l', ' ', 'D', 'i', 's', 'k', ' ', ' ', ' ', ' '};
constexpr char kRevision[4] = {'1', '.', '0', ' '};
constexpr uint32_t kStandardInquiryLength = 36;
constexpr uint32_t kMaxSerialLength = 32;
constexpr uint8_t kSupportedVpdPages[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
// Peripheral qualifier 3, device type 0x1f: "no device can be attached at this LUN" (SPC-4).
constexpr uint8_t kNoUnitPeripheral = 0x7f;

// Mode pages.
constexpr uint8_t kCachingPage = 0x08;
constexpr uint8_t kControlPage = 0x0a;
constexpr uint8_t kAllPages = 0x3f;
constexpr uint8_t kCachingPageLength = 20;
constexpr uint8_t kControlPageLength = 12;
constexpr uint8_t kDeviceSpecificWriteProtect = 0x80;
constexpr uint8_t kDeviceSpecificDpoFua = 0x10;

// Hands `response[0, length)` to a data-in command whose CDB allows `allocation` bytes (its
// allocation length field starts at CDB byte `allocation_byte`). An allocation the buffer cannot
// hold is an invalid CDB field; zero moves nothing, which is not an error (SPC-4 4.2.5.6).
Execution data_in(const uint8_t* response, uint32_t length, uint32_t allocation, uint16_t allocation_byte,
                  DataBuffer& buffer, DataDirection direction) {
    Execution execution;
    if (allocation > buffer.size()) {
        execution.completion = Completion::check(Sense::invalid_cdb_field(allocation_byte));
        return execution;
    }
    const uint32_t moved = std::min(length, allocation);
    if (moved != 0 && direction != DataDirection::kFromDevice) {
        execution.completion = Completion::malformed();
        return execution;
    }
    buffer.copy_in(0, response, moved);
    execution.completion = Completion::good(moved);
    return execution;
}

Execution completed(Completion completion) {
    Execution execution;
    execution.completion = completion;
    return execution;
}

Execution refused(const Sense& sense) { return completed(Completion::check(sense)); }

bool lba_range_fits(uint64_t lba, uint64_t blocks, uint64_t block_count) {
    return lba <= block_count && blocks <= block_count - lba;
}

uint8_t protect_bits(const uint8_t* cdb) { return cdb[1] >> 5; }

}  // namespace

const char* block_op_name(BlockOpKind kind) {
    switch (kind) {
        case BlockOpKind::kRead: return "read";
        case BlockOpKind::kWrite: return "write";
        case BlockOpKind::kFlush: return "flush";
        case BlockOpKind::kPunchHole: return "punch-hole";
    }
    return "?";
}

bool cdb_is_acceptable(const Command& command, Completion& refusal) {
    const uint32_t needed = cdb_length_of(command.cdb[0]);
    if (needed == 0) {
        refusal = Completion::check(Sense::of(kSenseIllegalRequest, kInvalidCommandOperationCode));
        return false;
    }
    if (command.cdb_length < needed) {
        // The CDB ends before its own fields do: point at the first missing byte.
        refusal = Completion::check(Sense::invalid_cdb_field(static_cast<uint16_t>(command.cdb_length)));
        return false;
    }
    const uint8_t control = command.cdb[needed - 1];
    if (control & 0x04) {  // NACA: auto contingent allegiance is not supported
        refusal = Completion::check(Sense::invalid_cdb_field(static_cast<uint16_t>(needed - 1), 2));
        return false;
    }
    if (control & 0x01) {  // LINK (obsolete)
        refusal = Completion::check(Sense::invalid_cdb_field(static_cast<uint16_t>(needed - 1), 0));
        return false;
    }
    return true;
}

// --- The target ---------------------------------------------------------------------------------

Execution ScsiTarget::execute(uint32_t lun, const Command& command, DataBuffer& buffer) const {
    Completion refusal;
    if (!cdb_is_acceptable(command, refusal)) return completed(refusal);
    if (command.cdb[0] == kReportLuns) return report_luns(command.cdb, buffer, command.direction);
    const LogicalUnit* logical_unit = unit(lun);
    if (logical_unit != nullptr) return logical_unit->execute(command, buffer);
    if (command.cdb[0] == kInquiry) return absent_unit_inquiry(command.cdb, buffer, command.direction);
    return completed(Completion::no_such_lun());
}

Execution ScsiTarget::report_luns(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const {
    const uint8_t select_report = cdb[2];
    // 0: all LUNs; 1: well-known only (none here); 2: all. 0x10-0x12 need administrative LUNs.
    if (select_report > 2) return refused(Sense::invalid_cdb_field(2));
    const uint32_t allocation = load_be32(cdb + 6);
    if (allocation < 16) return refused(Sense::invalid_cdb_field(6));  // SPC-4 6.33: at least 16
    uint8_t response[8 + 8 * kMaxLuns] = {};
    uint32_t count = 0;
    for (uint32_t lun = 0; lun < luns_.size() && lun < kMaxLuns; ++lun) {
        if (luns_[lun] == nullptr || select_report == 1) continue;
        // Single-level LUN, peripheral device addressing: bus 0, LUN in byte 1.
        response[8 + 8 * count + 1] = static_cast<uint8_t>(lun);
        ++count;
    }
    store_be32(response, count * 8);
    return data_in(response, 8 + 8 * count, allocation, 6, buffer, direction);
}

Execution ScsiTarget::absent_unit_inquiry(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const {
    // Only the standard page exists for a LUN without a unit (SPC-4 6.6.2; OpenVMM does the same).
    if (cdb[1] & 0x01) return refused(Sense::invalid_cdb_field(1, 0));
    if (cdb[2] != 0) return refused(Sense::invalid_cdb_field(2));
    uint8_t response[kStandardInquiryLength] = {};
    response[0] = kNoUnitPeripheral;
    response[2] = 0x06;
    response[3] = 0x02;
    response[4] = kStandardInquiryLength - 5;
    return data_in(response, sizeof response, load_be16(cdb + 3), 3, buffer, direction);
}

// --- A logical unit -----------------------------------------------------------------------------

Execution LogicalUnit::execute(const Command& command, DataBuffer& buffer) const {
    const uint8_t* cdb = command.cdb;
    switch (cdb[0]) {
        case kTestUnitReady: return completed(Completion::good());
        case kInquiry: return inquiry(cdb, buffer, command.direction);
        case kReadCapacity10: return read_capacity10(buffer, command.direction);
        case kServiceActionIn16:
            if ((cdb[1] & 0x1f) != kServiceActionReadCapacity16) return refused(Sense::invalid_cdb_field(1));
            return read_capacity16(cdb, buffer, command.direction);
        case kModeSense6: return mode_sense(cdb, false, buffer, command.direction);
        case kModeSense10: return mode_sense(cdb, true, buffer, command.direction);
        case kRead10: return read_write(cdb, false, false, buffer, command.direction);
        case kRead16: return read_write(cdb, true, false, buffer, command.direction);
        case kWrite10: return read_write(cdb, false, true, buffer, command.direction);
        case kWrite16: return read_write(cdb, true, true, buffer, command.direction);
        case kSynchronizeCache10: return synchronize_cache(cdb, false);
        case kSynchronizeCache16: return synchronize_cache(cdb, true);
        case kUnmap:
            if (properties_.unmap) return unmap(cdb, buffer, command.direction);
            break;
        default: break;
    }
    return refused(Sense::of(kSenseIllegalRequest, kInvalidCommandOperationCode));
}

Execution LogicalUnit::inquiry(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const {
    if (cdb[1] & 0x02) return refused(Sense::invalid_cdb_field(1, 1));  // CMDDT (obsolete)
    if (cdb[1] & 0xfc) return refused(Sense::invalid_cdb_field(1));
    const bool vital_product_data_page = cdb[1] & 0x01;
    const uint32_t allocation = load_be16(cdb + 3);
    if (!vital_product_data_page) {
        if (cdb[2] != 0) return refused(Sense::invalid_cdb_field(2));
        uint8_t response[kStandardInquiryLength] = {};
        response[0] = 0x00;  // direct-access block device, connected
        response[2] = 0x06;  // SPC-4
        response[3] = 0x02;  // response data format 2
        response[4] = kStandardInquiryLength - 5;
        response[7] = 0x02;  // CMDQUE: tagged commands, many in flight
        std::memcpy(response + 8, kVendor, sizeof kVendor);
        std::memcpy(response + 16, kProduct, sizeof kProduct);
        std::memcpy(response + 32, kRevision, sizeof kRevision);
        return data_in(response, sizeof response, allocation, 3, buffer, direction);
    }
    uint8_t response[256] = {};
    const uint32_t length = vital_product_data(cdb[2], response);
    if (length == 0) return refused(Sense::invalid_cdb_field(2));
    return data_in(response, length, allocation, 3, buffer, direction);
}

// Fills VPD page `page` (header included) and returns its length; 0 for a page not supported.
uint32_t LogicalUnit::vital_product_data(uint8_t page, uint8_t* out) const {
    out[1] = page;
    switch (page) {
        case 0x00:
            std::memcpy(out + 4, kSupportedVpdPages, sizeof kSupportedVpdPages);
            store_be16(out + 2, sizeof kSupportedVpdPages);
            return 4 + sizeof kSupportedVpdPages;
        case 0x80: {  // unit serial number
            const uint32_t length = static_cast<uint32_t>(std::min<size_t>(properties_.serial.size(), kMaxSerialLength));
            std::memcpy(out + 4, properties_.serial.data(), length);
            store_be16(out + 2, static_cast<uint16_t>(length));
            return 4 + length;
        }
        case 0x83: {  // device identification: a T10 vendor id and an NAA id
            uint8_t* designator = out + 4;
            const uint32_t serial = static_cast<uint32_t>(std::min<size_t>(properties_.serial.size(), kMaxSerialLength));
            designator[0] = 0x02;  // code set: ASCII
            designator[1] = 0x01;  // association: the unit; type: T10 vendor id
            designator[3] = static_cast<uint8_t>(sizeof kVendor + serial);
            std::memcpy(designator + 4, kVendor, sizeof kVendor);
            std::memcpy(designator + 4 + sizeof kVendor, properties_.serial.data(), serial);
            designator += 4 + designator[3];
            designator[0] = 0x01;  // code set: binary
            designator[1] = 0x03;  // type: NAA
            designator[3] = 8;
            store_be64(designator + 4, (properties_.naa_id & 0x0fffffffffffffffull) | 0x3000000000000000ull);  // NAA 3: locally assigned
            designator += 12;
            const uint32_t length = static_cast<uint32_t>(designator - out);
            store_be16(out + 2, static_cast<uint16_t>(length - 4));
            return length;
        }
        case 0xb0: {  // block limits
            store_be16(out + 2, 0x3c);
            store_be16(out + 6, static_cast<uint16_t>(properties_.optimal_transfer_blocks));
            store_be32(out + 8, properties_.max_transfer_bytes / kBlockSize);
            store_be32(out + 12, properties_.max_transfer_bytes / kBlockSize);
            if (properties_.unmap && !properties_.read_only) {
                store_be32(out + 20, kMaxUnmapBlocks);
                store_be32(out + 24, kMaxUnmapDescriptors);
                store_be32(out + 28, properties_.optimal_transfer_blocks);  // optimal unmap granularity
                store_be32(out + 32, 0x80000000u);  // UGAVALID, alignment 0
            }
            return 64;
        }
        case 0xb1:  // block device characteristics
            store_be16(out + 2, 0x3c);
            store_be16(out + 4, 1);  // medium rotation rate: not rotating
            return 64;
        case 0xb2:  // logical block provisioning
            store_be16(out + 2, 4);
            if (properties_.unmap) {
                out[5] = 0x80 | 0x04;  // LBPU; LBPRZ = 1: unmapped blocks read as zeros
                out[6] = 0x02;         // thin provisioned
            }
            return 8;
        default: return 0;
    }
}

Execution LogicalUnit::read_capacity10(DataBuffer& buffer, DataDirection direction) const {
    // No allocation length: the response is 8 bytes and the buffer must hold them.
    if (buffer.size() < 8 || direction != DataDirection::kFromDevice) return completed(Completion::malformed());
    uint8_t response[8];
    const uint64_t last = properties_.block_count - 1;
    store_be32(response, last > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(last));  // larger: use (16)
    store_be32(response + 4, kBlockSize);
    buffer.copy_in(0, response, sizeof response);
    return completed(Completion::good(sizeof response));
}

Execution LogicalUnit::read_capacity16(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const {
    uint8_t response[32] = {};
    store_be64(response, properties_.block_count - 1);
    store_be32(response + 8, kBlockSize);
    if (properties_.unmap) response[14] = 0x80 | 0x40;  // LBPME, LBPRZ
    return data_in(response, sizeof response, load_be32(cdb + 10), 10, buffer, direction);
}

Execution LogicalUnit::mode_sense(const uint8_t* cdb, bool ten, DataBuffer& buffer, DataDirection direction) const {
    const bool disable_block_descriptors = cdb[1] & 0x08;
    const bool long_lba = ten && (cdb[1] & 0x10);
    const uint8_t page_control = cdb[2] >> 6;
    const uint8_t page_code = cdb[2] & 0x3f;
    const uint8_t subpage = cdb[3];
    if (page_control == 3) {
        Sense sense = Sense::of(kSenseIllegalRequest, kSavingParametersNotSupported);
        sense.has_field = true;
        sense.field = {true, 2, 7};
        return refused(sense);
    }
    if (page_code != kCachingPage && page_code != kControlPage && page_code != kAllPages)
        return refused(Sense::invalid_cdb_field(2));
    if (subpage != 0 && !(page_code == kAllPages && subpage == 0xff)) return refused(Sense::invalid_cdb_field(3));

    uint8_t response[8 + 16 + kCachingPageLength + kControlPageLength] = {};
    const uint32_t header = ten ? 8 : 4;
    uint32_t length = header;
    const uint8_t device_specific =
        static_cast<uint8_t>((properties_.read_only ? kDeviceSpecificWriteProtect : 0) | kDeviceSpecificDpoFua);
    response[ten ? 3 : 2] = device_specific;
    if (!disable_block_descriptors) {
        uint8_t* descriptor = response + header;
        if (long_lba) {
            response[4] = 0x01;  // LONGLBA
            store_be64(descriptor, properties_.block_count);
            store_be32(descriptor + 12, kBlockSize);
            length += 16;
        } else {
            const uint64_t blocks = properties_.block_count;
            store_be32(descriptor, blocks > 0xffffffffu ? 0xffffffffu : static_cast<uint32_t>(blocks));
            store_be32(descriptor + 4, kBlockSize);  // density code 0 in the top byte
            length += 8;
        }
        if (ten) store_be16(response + 6, static_cast<uint16_t>(length - header));
        else response[3] = static_cast<uint8_t>(length - header);
    }
    const bool changeable = page_control == 1;  // nothing can be changed (no MODE SELECT): all zero
    if (page_code == kCachingPage || page_code == kAllPages) {
        uint8_t* page = response + length;
        page[0] = kCachingPage;
        page[1] = kCachingPageLength - 2;
        if (!changeable) page[2] = 0x04;  // WCE: the guest must flush for durability
        length += kCachingPageLength;
    }
    if (page_code == kControlPage || page_code == kAllPages) {
        uint8_t* page = response + length;
        page[0] = kControlPage;
        page[1] = kControlPageLength - 2;
        if (!changeable) page[3] = 0x10;  // QUEUE ALGORITHM MODIFIER 1: unrestricted reordering
        length += kControlPageLength;
    }
    if (ten) store_be16(response, static_cast<uint16_t>(length - 2));
    else response[0] = static_cast<uint8_t>(length - 1);
    const uint32_t allocation = ten ? load_be16(cdb + 7) : cdb[4];
    return data_in(response, length, allocation, ten ? 7 : 4, buffer, direction);
}

Execution LogicalUnit::read_write(const uint8_t* cdb, bool sixteen, bool write, DataBuffer& buffer,
                                  DataDirection direction) const {
    if (protect_bits(cdb) != 0) return refused(Sense::invalid_cdb_field(1, 7));  // no protection information
    const uint64_t lba = sixteen ? load_be64(cdb + 2) : load_be32(cdb + 2);
    const uint64_t blocks = sixteen ? load_be32(cdb + 10) : load_be16(cdb + 7);
    const uint16_t length_byte = sixteen ? 10 : 7;
    const uint64_t bytes = blocks * kBlockSize;
    if (bytes > properties_.max_transfer_bytes) return refused(Sense::invalid_cdb_field(length_byte));
    if (bytes > buffer.size()) return refused(Sense::invalid_cdb_field(length_byte));
    const DataDirection expected = write ? DataDirection::kToDevice : DataDirection::kFromDevice;
    if (bytes != 0 && direction != expected) return completed(Completion::malformed());
    if (!lba_range_fits(lba, blocks, properties_.block_count)) return refused(Sense::of(kSenseIllegalRequest, kLbaOutOfRange));
    if (write && properties_.read_only) return refused(Sense::of(kSenseDataProtect, kWriteProtected));
    if (blocks == 0) return completed(Completion::good());  // SBC-3: not an error, nothing moves
    Execution execution;
    execution.ops[0] = BlockOp{write ? BlockOpKind::kWrite : BlockOpKind::kRead, lba * kBlockSize, bytes,
                               write && (cdb[1] & 0x08) != 0};
    execution.op_count = 1;
    return execution;
}

Execution LogicalUnit::synchronize_cache(const uint8_t* cdb, bool sixteen) const {
    const uint64_t lba = sixteen ? load_be64(cdb + 2) : load_be32(cdb + 2);
    const uint64_t blocks = sixteen ? load_be32(cdb + 10) : load_be16(cdb + 7);
    // Zero blocks: from the LBA to the end (SBC-3 5.22).
    if (!lba_range_fits(lba, blocks, properties_.block_count) || lba == properties_.block_count)
        return refused(Sense::of(kSenseIllegalRequest, kLbaOutOfRange));
    if (properties_.read_only) return completed(Completion::good());  // nothing was written
    // The whole file is flushed whatever the range (fdatasync); IMMED is served synchronously.
    Execution execution;
    execution.ops[0] = BlockOp{BlockOpKind::kFlush, 0, 0, false};
    execution.op_count = 1;
    return execution;
}

Execution LogicalUnit::unmap(const uint8_t* cdb, DataBuffer& buffer, DataDirection direction) const {
    if (cdb[1] & 0x01) return refused(Sense::invalid_cdb_field(1, 0));  // ANCHOR
    const uint32_t parameter_length = load_be16(cdb + 7);
    if (parameter_length == 0) return completed(Completion::good());
    if (parameter_length > buffer.size()) return refused(Sense::invalid_cdb_field(7));
    if (direction != DataDirection::kToDevice) return completed(Completion::malformed());
    if (properties_.read_only) return refused(Sense::of(kSenseDataProtect, kWriteProtected));
    if (parameter_length < 8) return refused(Sense::of(kSenseIllegalRequest, kParameterListLengthError));

    // Copy the parameter list once (header and at most one descriptor past the limit), then parse
    // the copy: the guest may change its buffer meanwhile.
    constexpr uint32_t kCopyMax = 8 + 16 * (kMaxUnmapDescriptors + 1);
    uint8_t list[kCopyMax] = {};
    buffer.copy_out(0, list, std::min(parameter_length, kCopyMax));
    const uint32_t descriptor_bytes = load_be16(list + 2);
    if (descriptor_bytes % 16 != 0 || 8 + descriptor_bytes > parameter_length)
        return refused(Sense::invalid_parameter_field(2));
    const uint32_t descriptors = descriptor_bytes / 16;
    if (descriptors > kMaxUnmapDescriptors) return refused(Sense::invalid_parameter_field(2));

    Execution execution;
    for (uint32_t i = 0; i < descriptors; ++i) {
        const uint8_t* descriptor = list + 8 + 16 * i;
        const uint64_t lba = load_be64(descriptor);
        const uint32_t blocks = load_be32(descriptor + 8);
        if (blocks > kMaxUnmapBlocks) return refused(Sense::invalid_parameter_field(static_cast<uint16_t>(8 + 16 * i + 8)));
        if (!lba_range_fits(lba, blocks, properties_.block_count))
            return refused(Sense::of(kSenseIllegalRequest, kLbaOutOfRange));
        if (blocks == 0) continue;
        execution.ops[execution.op_count++] = BlockOp{BlockOpKind::kPunchHole, lba * kBlockSize, uint64_t{blocks} * kBlockSize, false};
    }
    if (execution.op_count == 0) execution.completion = Completion::good();
    return execution;
}

Completion LogicalUnit::complete_block_io(const Execution& execution, const BlockIoResult& result) const {
    if (result.ok()) {
        uint32_t moved = 0;
        for (uint32_t i = 0; i < execution.op_count; ++i) {
            const BlockOp& op = execution.ops[i];
            if (op.kind == BlockOpKind::kRead || op.kind == BlockOpKind::kWrite) moved += static_cast<uint32_t>(op.length);
        }
        return Completion::good(moved);
    }
    const BlockOp& failed = execution.ops[result.failed_op < execution.op_count ? result.failed_op : 0];
    if (result.error == ENOSPC) return Completion::check(Sense::of(kSenseDataProtect, kSpaceAllocationFailed));
    // A short transfer or EIO: a medium error at the first block not moved.
    const bool medium = result.short_transfer || result.error == EIO;
    if (!medium) return Completion::check(Sense::of(kSenseHardwareError, kInternalTargetFailure));
    switch (failed.kind) {
        case BlockOpKind::kRead:
            return Completion::check(
                Sense::of(kSenseMediumError, kUnrecoveredReadError).with_information((failed.offset + result.bytes_done) / kBlockSize));
        case BlockOpKind::kWrite:
            return Completion::check(
                Sense::of(kSenseMediumError, kWriteError).with_information((failed.offset + result.bytes_done) / kBlockSize));
        case BlockOpKind::kFlush: return Completion::check(Sense::of(kSenseMediumError, kWriteError));
        case BlockOpKind::kPunchHole: return Completion::check(Sense::of(kSenseHardwareError, kInternalTargetFailure));
    }
    return Completion::check(Sense::of(kSenseHardwareError, kInternalTargetFailure));
}

// --- Sense --------------------------------------------------------------------------------------

uint32_t encode_fixed_sense(const Sense& sense, uint8_t* out, uint32_t capacity) {
    uint8_t fixed[kFixedSenseLength] = {};
    fixed[0] = static_cast<uint8_t>(0x70 | (sense.has_information ? 0x80 : 0));  // current error, VALID
    fixed[2] = sense.key & 0x0f;
    if (sense.has_information) store_be32(fixed + 3, sense.information);
    fixed[7] = kFixedSenseLength - 8;
    fixed[12] = sense.code.asc;
    fixed[13] = sense.code.ascq;
    if (sense.has_field) {
        fixed[15] = static_cast<uint8_t>(0x80 | (sense.field.in_cdb ? 0x40 : 0) |
                                         (sense.field.bit >= 0 ? 0x08 | (sense.field.bit & 0x07) : 0));
        store_be16(fixed + 16, sense.field.byte);
    }
    const uint32_t length = std::min(capacity, kFixedSenseLength);
    std::memcpy(out, fixed, length);
    return length;
}

}  // namespace hvkvm::storage::scsi
