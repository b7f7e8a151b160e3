#include "drivers/storvsc/scsi_commands.h"

#include "lib/string.h"
#include "storage/scsi/scsi_defs.h"

namespace hvkvm::guest::storvsc::scsi_commands {
namespace {

namespace scsi = ::hvkvm::storage::scsi;

constexpr uint8_t kFuaBit = 0x08;            // byte 1 of READ/WRITE(10/16)
constexpr uint8_t kAllPages = 0x3f;          // MODE SENSE page code
constexpr uint8_t kWriteProtect = 0x80;      // device-specific parameter
constexpr uint8_t kFixedSenseCurrent = 0x70;
constexpr uint8_t kFixedSenseDeferred = 0x71;
constexpr uint32_t kFixedSenseMinimum = 14;  // through ASCQ

}  // namespace

uint8_t read_write16(uint8_t* cdb, bool write, bool fua, uint64_t lba, uint32_t blocks) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = write ? scsi::kWrite16 : scsi::kRead16;
    if (fua) cdb[1] = kFuaBit;
    scsi::store_be64(cdb + 2, lba);
    scsi::store_be32(cdb + 10, blocks);
    return 16;
}

uint8_t synchronize_cache10(uint8_t* cdb) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = scsi::kSynchronizeCache10;  // LBA 0, 0 blocks: the whole medium
    return 10;
}

uint8_t inquiry(uint8_t* cdb, uint16_t allocation) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = scsi::kInquiry;
    scsi::store_be16(cdb + 3, allocation);
    return 6;
}

uint8_t read_capacity16(uint8_t* cdb, uint32_t allocation) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = scsi::kServiceActionIn16;
    cdb[1] = scsi::kServiceActionReadCapacity16;
    scsi::store_be32(cdb + 10, allocation);
    return 16;
}

uint8_t report_luns(uint8_t* cdb, uint32_t allocation) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = scsi::kReportLuns;
    scsi::store_be32(cdb + 6, allocation);
    return 12;
}

uint8_t mode_sense6(uint8_t* cdb, uint8_t allocation) {
    memset(cdb, 0, wire::kCdbMaxLength);
    cdb[0] = scsi::kModeSense6;
    cdb[2] = kAllPages;
    cdb[4] = allocation;
    return 6;
}

uint32_t parse_report_luns(const uint8_t* data, uint32_t bytes, uint8_t* luns, uint32_t capacity) {
    if (bytes < 8) return 0;
    uint32_t listed = scsi::load_be32(data) / 8;
    if (listed > (bytes - 8) / 8) listed = (bytes - 8) / 8;  // the host may list more than fit
    uint32_t count = 0;
    for (uint32_t i = 0; i < listed && count < capacity; ++i) {
        const uint8_t* entry = data + 8 + 8 * i;
        // Peripheral device addressing (method 00b), bus 0: the LUN is byte 1.
        if (entry[0] != 0) continue;
        luns[count++] = entry[1];
    }
    return count;
}

Capacity parse_read_capacity16(const uint8_t* data) {
    return {scsi::load_be64(data) + 1, scsi::load_be32(data + 8)};
}

bool is_disk(const uint8_t* inquiry_data) { return inquiry_data[0] == 0x00; }  // connected, direct access

bool write_protected(const uint8_t* mode_header) { return (mode_header[2] & kWriteProtect) != 0; }

Outcome interpret(const wire::Packet& answer, uint32_t answer_size, uint32_t expected_bytes) {
    Outcome outcome{block::IoStatus::kDeviceError, kDetailBadAnswer, false, 0, 0, 0};
    if (answer_size < wire::kPacketSize || answer.operation != wire::Operation::kCompleteIo) return outcome;
    const wire::ScsiRequest& srb = answer.srb;
    const uint8_t code = wire::srb_status_code(srb.srb_status);
    if (code == wire::kSrbStatusSuccess && srb.scsi_status == scsi::kStatusGood) {
        if (srb.data_transfer_length != expected_bytes) {
            outcome.detail = kDetailShortTransfer;
            return outcome;
        }
        return {block::IoStatus::kOk, 0, false, 0, 0, 0};
    }
    outcome.detail = error_detail(srb.srb_status, 0, 0, 0);
    const uint32_t sense_bytes = srb.sense_info_length < wire::kSenseBufferSize ? srb.sense_info_length : wire::kSenseBufferSize;
    const uint8_t response = srb.sense_data[0] & 0x7f;
    if ((srb.srb_status & wire::kSrbStatusAutosenseValid) && sense_bytes >= kFixedSenseMinimum &&
        (response == kFixedSenseCurrent || response == kFixedSenseDeferred)) {
        outcome.has_sense = true;
        outcome.sense_key = srb.sense_data[2] & 0x0f;
        outcome.asc = srb.sense_data[12];
        outcome.ascq = srb.sense_data[13];
        outcome.detail = error_detail(srb.srb_status, outcome.sense_key, outcome.asc, outcome.ascq);
        const scsi::AdditionalSense code_pair{outcome.asc, outcome.ascq};
        if (outcome.sense_key == scsi::kSenseIllegalRequest && code_pair == scsi::kLbaOutOfRange)
            outcome.status = block::IoStatus::kOutOfRange;
        else if (outcome.sense_key == scsi::kSenseDataProtect && code_pair == scsi::kWriteProtected)
            outcome.status = block::IoStatus::kReadOnly;
    }
    return outcome;
}

}  // namespace hvkvm::guest::storvsc::scsi_commands
