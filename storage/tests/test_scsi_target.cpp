// The SCSI target command by command: each validated field at the exact fit (accepted) and one
// past (refused, with the sense and field pointer an initiator would see).
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "storage/scsi/scsi_target.h"

using namespace hvkvm::storage::scsi;

namespace {

class MemoryBuffer final : public DataBuffer {
public:
    explicit MemoryBuffer(uint32_t size, uint8_t fill = 0xee) : bytes(size, fill) {}
    uint32_t size() const override { return static_cast<uint32_t>(bytes.size()); }
    void copy_in(uint32_t offset, const void* source, uint32_t count) override {
        REQUIRE(uint64_t{offset} + count <= bytes.size());
        std::memcpy(bytes.data() + offset, source, count);
    }
    void copy_out(uint32_t offset, void* destination, uint32_t count) const override {
        REQUIRE(uint64_t{offset} + count <= bytes.size());
        std::memcpy(destination, bytes.data() + offset, count);
    }
    std::vector<uint8_t> bytes;
};

constexpr uint64_t kBlocks = 2048;  // a 1 MiB disk
constexpr uint32_t kMaxTransfer = 64 * 1024;

DiskProperties disk(bool read_only = false, uint64_t blocks = kBlocks) {
    DiskProperties properties;
    properties.block_count = blocks;
    properties.read_only = read_only;
    properties.max_transfer_bytes = kMaxTransfer;
    properties.serial = "data-disk";
    properties.naa_id = 0xabcdef0123456789ull;
    return properties;
}

struct Fixture {
    explicit Fixture(DiskProperties properties = disk()) : unit(std::move(properties)), target({&unit, nullptr, &unit}) {}

    Execution run(std::vector<uint8_t> cdb, DataDirection direction, DataBuffer& buffer, uint32_t lun = 0) {
        return target.execute(lun, Command{cdb.data(), static_cast<uint32_t>(cdb.size()), direction}, buffer);
    }
    Execution run(std::vector<uint8_t> cdb, DataDirection direction = DataDirection::kNone) {
        EmptyBuffer none;
        return run(std::move(cdb), direction, none);
    }

    LogicalUnit unit;
    ScsiTarget target;
};

std::vector<uint8_t> cdb10(uint8_t opcode, uint32_t lba, uint16_t blocks, uint8_t byte1 = 0) {
    std::vector<uint8_t> cdb(10, 0);
    cdb[0] = opcode;
    cdb[1] = byte1;
    store_be32(&cdb[2], lba);
    store_be16(&cdb[7], blocks);
    return cdb;
}

std::vector<uint8_t> cdb16(uint8_t opcode, uint64_t lba, uint32_t blocks, uint8_t byte1 = 0) {
    std::vector<uint8_t> cdb(16, 0);
    cdb[0] = opcode;
    cdb[1] = byte1;
    store_be64(&cdb[2], lba);
    store_be32(&cdb[10], blocks);
    return cdb;
}

std::vector<uint8_t> inquiry(bool vpd, uint8_t page, uint16_t allocation) {
    std::vector<uint8_t> cdb(6, 0);
    cdb[0] = kInquiry;
    cdb[1] = vpd ? 1 : 0;
    cdb[2] = page;
    store_be16(&cdb[3], allocation);
    return cdb;
}

void check_sense(const Execution& execution, uint8_t key, AdditionalSense code) {
    REQUIRE_FALSE(execution.needs_io());
    REQUIRE(execution.completion.kind == CompletionKind::kCheckCondition);
    CHECK(execution.completion.status() == kStatusCheckCondition);
    CHECK(execution.completion.sense.key == key);
    CHECK(execution.completion.sense.code == code);
}

void check_invalid_cdb_field(const Execution& execution, uint16_t byte, int8_t bit = -1) {
    check_sense(execution, kSenseIllegalRequest, kInvalidFieldInCdb);
    CHECK(execution.completion.sense.has_field);
    CHECK(execution.completion.sense.field.in_cdb);
    CHECK(execution.completion.sense.field.byte == byte);
    CHECK(execution.completion.sense.field.bit == bit);
}

void check_good(const Execution& execution, uint32_t transferred) {
    REQUIRE_FALSE(execution.needs_io());
    REQUIRE(execution.completion.kind == CompletionKind::kGood);
    CHECK(execution.completion.transferred == transferred);
}

}  // namespace

TEST_CASE("scsi: TEST UNIT READY is good; CDB length and control byte are checked first", "[storage][scsi]") {
    Fixture f;
    check_good(f.run({kTestUnitReady, 0, 0, 0, 0, 0}), 0);
    check_invalid_cdb_field(f.run({kTestUnitReady, 0, 0, 0, 0}), 5);          // 5 of 6 bytes
    check_invalid_cdb_field(f.run({kTestUnitReady, 0, 0, 0, 0, 0x04}), 5, 2);  // NACA
    check_invalid_cdb_field(f.run({kTestUnitReady, 0, 0, 0, 0, 0x01}), 5, 0);  // LINK
    check_invalid_cdb_field(f.run(std::vector<uint8_t>(9, 0x28)), 9);          // READ(10) in 9 bytes
}

TEST_CASE("scsi: commands not served are ILLEGAL REQUEST, INVALID COMMAND OPERATION CODE", "[storage][scsi]") {
    Fixture f;
    for (uint8_t opcode : {uint8_t{0x03} /* REQUEST SENSE */, uint8_t{0x15} /* MODE SELECT(6) */, uint8_t{0x41} /* WRITE SAME(10) */,
                           uint8_t{0x04} /* FORMAT UNIT */, uint8_t{0xa3} /* MAINTENANCE IN */, uint8_t{0x1b} /* START STOP */}) {
        std::vector<uint8_t> cdb(cdb_length_of(opcode), 0);
        cdb[0] = opcode;
        check_sense(f.run(cdb), kSenseIllegalRequest, kInvalidCommandOperationCode);
    }
    // Reserved and vendor-specific groups have no defined CDB length.
    check_sense(f.run(std::vector<uint8_t>(16, 0x60)), kSenseIllegalRequest, kInvalidCommandOperationCode);
    check_sense(f.run(std::vector<uint8_t>(16, 0xc0)), kSenseIllegalRequest, kInvalidCommandOperationCode);
}

TEST_CASE("scsi: standard INQUIRY, allocation length at the buffer's size and one past", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(36);
    const Execution full = f.run(inquiry(false, 0, 36), DataDirection::kFromDevice, buffer);
    check_good(full, 36);
    CHECK(buffer.bytes[0] == 0x00);  // direct-access block device
    CHECK(buffer.bytes[2] == 0x06);  // SPC-4
    CHECK(buffer.bytes[4] == 31);
    CHECK(buffer.bytes[7] == 0x02);  // CMDQUE
    CHECK(std::string(buffer.bytes.begin() + 8, buffer.bytes.begin() + 16) == "hvkvm   ");
    CHECK(std::string(buffer.bytes.begin() + 16, buffer.bytes.begin() + 32) == "Virtual Disk    ");

    check_invalid_cdb_field(f.run(inquiry(false, 0, 37), DataDirection::kFromDevice, buffer), 3);
    MemoryBuffer big(255, 0xee);
    check_good(f.run(inquiry(false, 0, 255), DataDirection::kFromDevice, big), 36);  // less data than allowed
    CHECK(big.bytes[36] == 0xee);                                                    // nothing written past it
    MemoryBuffer small(5);
    check_good(f.run(inquiry(false, 0, 5), DataDirection::kFromDevice, small), 5);
    check_good(f.run(inquiry(false, 0, 0), DataDirection::kFromDevice, small), 0);

    check_invalid_cdb_field(f.run(inquiry(false, 0x80, 36), DataDirection::kFromDevice, buffer), 2);  // page without EVPD
    auto cmddt = inquiry(false, 0, 36);
    cmddt[1] = 0x02;
    check_invalid_cdb_field(f.run(cmddt, DataDirection::kFromDevice, buffer), 1, 1);
    // Data the wrong way is a malformed request, not a SCSI error.
    CHECK(f.run(inquiry(false, 0, 36), DataDirection::kToDevice, buffer).completion.kind == CompletionKind::kMalformedRequest);
}

TEST_CASE("scsi: VPD pages 0x00 0x80 0x83 0xB0 0xB1 0xB2, and an unsupported one", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(255);
    check_good(f.run(inquiry(true, 0x00, 255), DataDirection::kFromDevice, buffer), 10);
    CHECK(std::vector<uint8_t>(buffer.bytes.begin(), buffer.bytes.begin() + 10) ==
          std::vector<uint8_t>{0, 0x00, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2});

    check_good(f.run(inquiry(true, 0x80, 255), DataDirection::kFromDevice, buffer), 4 + 9);
    CHECK(std::string(buffer.bytes.begin() + 4, buffer.bytes.begin() + 13) == "data-disk");

    const Execution identification = f.run(inquiry(true, 0x83, 255), DataDirection::kFromDevice, buffer);
    REQUIRE(identification.completion.kind == CompletionKind::kGood);
    const uint8_t* t10 = &buffer.bytes[4];
    CHECK((t10[1] & 0x0f) == 1);  // T10 vendor id
    CHECK(std::string(t10 + 4, t10 + 4 + t10[3]) == "hvkvm   data-disk");
    const uint8_t* naa = t10 + 4 + t10[3];
    CHECK((naa[1] & 0x0f) == 3);  // NAA
    CHECK(naa[3] == 8);
    CHECK(load_be64(naa + 4) == 0x3bcdef0123456789ull);  // NAA 3 (locally assigned) in the top nibble
    CHECK(load_be16(&buffer.bytes[2]) + 4u == identification.completion.transferred);

    check_good(f.run(inquiry(true, 0xb0, 255), DataDirection::kFromDevice, buffer), 64);
    CHECK(load_be32(&buffer.bytes[8]) == kMaxTransfer / kBlockSize);   // MAXIMUM TRANSFER LENGTH
    CHECK(load_be32(&buffer.bytes[20]) == kMaxUnmapBlocks);            // MAXIMUM UNMAP LBA COUNT
    CHECK(load_be32(&buffer.bytes[24]) == kMaxUnmapDescriptors);       // MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
    CHECK(load_be32(&buffer.bytes[36]) == 0);                          // no WRITE SAME

    check_good(f.run(inquiry(true, 0xb1, 255), DataDirection::kFromDevice, buffer), 64);
    CHECK(load_be16(&buffer.bytes[4]) == 1);  // not rotating

    check_good(f.run(inquiry(true, 0xb2, 255), DataDirection::kFromDevice, buffer), 8);
    CHECK((buffer.bytes[5] & 0x80) != 0);     // LBPU: UNMAP
    CHECK(((buffer.bytes[5] >> 2) & 7) == 1); // LBPRZ: unmapped blocks read zero
    CHECK((buffer.bytes[6] & 7) == 2);        // thin provisioned

    check_invalid_cdb_field(f.run(inquiry(true, 0x81, 255), DataDirection::kFromDevice, buffer), 2);
    MemoryBuffer ten(10);
    check_good(f.run(inquiry(true, 0x00, 10), DataDirection::kFromDevice, ten), 10);
    check_invalid_cdb_field(f.run(inquiry(true, 0x00, 11), DataDirection::kFromDevice, ten), 3);
}

TEST_CASE("scsi: READ CAPACITY (10) and (16)", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer eight(8);
    check_good(f.run({kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, DataDirection::kFromDevice, eight), 8);
    CHECK(load_be32(&eight.bytes[0]) == kBlocks - 1);
    CHECK(load_be32(&eight.bytes[4]) == kBlockSize);
    MemoryBuffer seven(7);
    CHECK(f.run({kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, DataDirection::kFromDevice, seven).completion.kind ==
          CompletionKind::kMalformedRequest);

    std::vector<uint8_t> rc16(16, 0);
    rc16[0] = kServiceActionIn16;
    rc16[1] = kServiceActionReadCapacity16;
    store_be32(&rc16[10], 32);
    MemoryBuffer thirty_two(32);
    check_good(f.run(rc16, DataDirection::kFromDevice, thirty_two), 32);
    CHECK(load_be64(&thirty_two.bytes[0]) == kBlocks - 1);
    CHECK(load_be32(&thirty_two.bytes[8]) == kBlockSize);
    CHECK((thirty_two.bytes[14] & 0xc0) == 0xc0);  // LBPME, LBPRZ
    store_be32(&rc16[10], 33);
    check_invalid_cdb_field(f.run(rc16, DataDirection::kFromDevice, thirty_two), 10);
    rc16[1] = 0x11;  // another service action
    store_be32(&rc16[10], 32);
    check_invalid_cdb_field(f.run(rc16, DataDirection::kFromDevice, thirty_two), 1);

    // Past 2^32 blocks READ CAPACITY (10) says "use (16)".
    Fixture huge(disk(false, (uint64_t{1} << 32) + 1));
    check_good(huge.run({kReadCapacity10, 0, 0, 0, 0, 0, 0, 0, 0, 0}, DataDirection::kFromDevice, eight), 8);
    CHECK(load_be32(&eight.bytes[0]) == 0xffffffffu);
    rc16[1] = kServiceActionReadCapacity16;
    check_good(huge.run(rc16, DataDirection::kFromDevice, thirty_two), 32);
    CHECK(load_be64(&thirty_two.bytes[0]) == uint64_t{1} << 32);
}

TEST_CASE("scsi: REPORT LUNS lists the units; allocation below 16 is refused", "[storage][scsi]") {
    Fixture f;  // units at LUN 0 and 2
    std::vector<uint8_t> cdb(12, 0);
    cdb[0] = kReportLuns;
    store_be32(&cdb[6], 24);
    MemoryBuffer buffer(24);
    check_good(f.run(cdb, DataDirection::kFromDevice, buffer), 24);
    CHECK(load_be32(&buffer.bytes[0]) == 16);
    CHECK(load_be64(&buffer.bytes[8]) == 0);
    CHECK(load_be64(&buffer.bytes[16]) == uint64_t{2} << 48);
    // Sent to a LUN without a unit, it still answers for the target.
    check_good(f.run(cdb, DataDirection::kFromDevice, buffer, 7), 24);

    store_be32(&cdb[6], 16);
    check_good(f.run(cdb, DataDirection::kFromDevice, buffer), 16);  // the list is cut, the length says 16
    CHECK(load_be32(&buffer.bytes[0]) == 16);
    store_be32(&cdb[6], 15);
    check_invalid_cdb_field(f.run(cdb, DataDirection::kFromDevice, buffer), 6);
    store_be32(&cdb[6], 25);
    check_invalid_cdb_field(f.run(cdb, DataDirection::kFromDevice, buffer), 6);  // more than the buffer
    store_be32(&cdb[6], 24);
    cdb[2] = 3;
    check_invalid_cdb_field(f.run(cdb, DataDirection::kFromDevice, buffer), 2);
    cdb[2] = 1;  // well-known LUNs only: none
    check_good(f.run(cdb, DataDirection::kFromDevice, buffer), 8);
    CHECK(load_be32(&buffer.bytes[0]) == 0);
}

TEST_CASE("scsi: a LUN without a unit: INQUIRY says so, everything else is no such LUN", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(36);
    check_good(f.run(inquiry(false, 0, 36), DataDirection::kFromDevice, buffer, 1), 36);
    CHECK(buffer.bytes[0] == 0x7f);  // qualifier 3, type 0x1f
    check_invalid_cdb_field(f.run(inquiry(true, 0x00, 36), DataDirection::kFromDevice, buffer, 1), 1, 0);
    CHECK(f.run({kTestUnitReady, 0, 0, 0, 0, 0}, DataDirection::kNone, buffer, 1).completion.kind ==
          CompletionKind::kNoSuchLogicalUnit);
    MemoryBuffer data(512);
    CHECK(f.run(cdb10(kRead10, 0, 1), DataDirection::kFromDevice, data, 255).completion.kind == CompletionKind::kNoSuchLogicalUnit);
}

TEST_CASE("scsi: MODE SENSE (6) and (10): pages, block descriptors, page control", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(255);
    const std::vector<uint8_t> all6 = {kModeSense6, 0, 0x3f, 0, 255, 0};
    const Execution all = f.run(all6, DataDirection::kFromDevice, buffer);
    check_good(all, 4 + 8 + 20 + 12);
    CHECK(buffer.bytes[0] == 4 + 8 + 20 + 12 - 1);  // mode data length
    CHECK(buffer.bytes[2] == 0x10);                 // DPOFUA, not write-protected
    CHECK(buffer.bytes[3] == 8);                    // one short block descriptor
    CHECK(load_be32(&buffer.bytes[4]) == kBlocks);
    CHECK(load_be32(&buffer.bytes[8]) == kBlockSize);
    CHECK(buffer.bytes[12] == 0x08);  // caching page
    CHECK(buffer.bytes[14] == 0x04);  // WCE: flushes are needed
    CHECK(buffer.bytes[32] == 0x0a);  // control page

    check_good(f.run({kModeSense6, 0x08, 0x08, 0, 255, 0}, DataDirection::kFromDevice, buffer), 4 + 20);  // DBD
    CHECK(buffer.bytes[3] == 0);
    CHECK(buffer.bytes[4] == 0x08);
    check_good(f.run({kModeSense6, 0x08, 0x48, 0, 255, 0}, DataDirection::kFromDevice, buffer), 4 + 20);  // changeable
    CHECK(buffer.bytes[6] == 0);  // nothing can be changed
    check_sense(f.run({kModeSense6, 0, 0xc8, 0, 255, 0}, DataDirection::kFromDevice, buffer), kSenseIllegalRequest,
                kSavingParametersNotSupported);
    check_invalid_cdb_field(f.run({kModeSense6, 0, 0x1c, 0, 255, 0}, DataDirection::kFromDevice, buffer), 2);
    check_invalid_cdb_field(f.run({kModeSense6, 0, 0x08, 1, 255, 0}, DataDirection::kFromDevice, buffer), 3);
    check_good(f.run({kModeSense6, 0, 0x3f, 0xff, 255, 0}, DataDirection::kFromDevice, buffer), 44);  // all subpages

    MemoryBuffer four(4);
    check_good(f.run({kModeSense6, 0, 0x3f, 0, 4, 0}, DataDirection::kFromDevice, four), 4);  // just the header
    check_invalid_cdb_field(f.run({kModeSense6, 0, 0x3f, 0, 5, 0}, DataDirection::kFromDevice, four), 4);

    const Execution ten = f.run({kModeSense10, 0x10, 0x3f, 0, 0, 0, 0, 0, 255, 0}, DataDirection::kFromDevice, buffer);  // LLBAA
    check_good(ten, 8 + 16 + 20 + 12);
    CHECK(load_be16(&buffer.bytes[0]) == 8 + 16 + 20 + 12 - 2);
    CHECK(buffer.bytes[4] == 0x01);  // LONGLBA
    CHECK(load_be16(&buffer.bytes[6]) == 16);
    CHECK(load_be64(&buffer.bytes[8]) == kBlocks);

    Fixture read_only(disk(true));
    check_good(read_only.run(all6, DataDirection::kFromDevice, buffer), 44);
    CHECK(buffer.bytes[2] == 0x90);  // write-protected
}

TEST_CASE("scsi: READ and WRITE (10)/(16): last LBA, transfer length limit, buffer, direction, FUA", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(kMaxTransfer + kBlockSize);
    const Execution last = f.run(cdb10(kRead10, kBlocks - 1, 1), DataDirection::kFromDevice, buffer);
    REQUIRE(last.needs_io());
    CHECK(last.op_count == 1);
    CHECK(last.ops[0].kind == BlockOpKind::kRead);
    CHECK(last.ops[0].offset == (kBlocks - 1) * kBlockSize);
    CHECK(last.ops[0].length == kBlockSize);
    check_sense(f.run(cdb10(kRead10, kBlocks - 1, 2), DataDirection::kFromDevice, buffer), kSenseIllegalRequest, kLbaOutOfRange);
    check_sense(f.run(cdb10(kRead10, kBlocks, 1), DataDirection::kFromDevice, buffer), kSenseIllegalRequest, kLbaOutOfRange);
    check_sense(f.run(cdb16(kRead16, ~uint64_t{0}, 2), DataDirection::kFromDevice, buffer), kSenseIllegalRequest,
                kLbaOutOfRange);  // no wrap-around
    check_good(f.run(cdb10(kRead10, kBlocks, 0), DataDirection::kFromDevice, buffer), 0);  // zero blocks at the end
    check_sense(f.run(cdb10(kRead10, kBlocks + 1, 0), DataDirection::kFromDevice, buffer), kSenseIllegalRequest, kLbaOutOfRange);

    const uint16_t max_blocks = kMaxTransfer / kBlockSize;
    CHECK(f.run(cdb10(kRead10, 0, max_blocks), DataDirection::kFromDevice, buffer).needs_io());
    check_invalid_cdb_field(f.run(cdb10(kRead10, 0, max_blocks + 1), DataDirection::kFromDevice, buffer), 7);
    CHECK(f.run(cdb16(kWrite16, 0, max_blocks), DataDirection::kToDevice, buffer).needs_io());
    check_invalid_cdb_field(f.run(cdb16(kWrite16, 0, max_blocks + 1), DataDirection::kToDevice, buffer), 10);

    MemoryBuffer one_block(kBlockSize);
    CHECK(f.run(cdb10(kRead10, 0, 1), DataDirection::kFromDevice, one_block).needs_io());
    check_invalid_cdb_field(f.run(cdb10(kRead10, 0, 2), DataDirection::kFromDevice, one_block), 7);  // buffer too small
    CHECK(f.run(cdb10(kRead10, 0, 1), DataDirection::kToDevice, one_block).completion.kind == CompletionKind::kMalformedRequest);
    CHECK(f.run(cdb10(kWrite10, 0, 1), DataDirection::kFromDevice, one_block).completion.kind == CompletionKind::kMalformedRequest);
    check_invalid_cdb_field(f.run(cdb10(kRead10, 0, 1, 0x20), DataDirection::kFromDevice, one_block), 1, 7);  // RDPROTECT

    const Execution fua = f.run(cdb16(kWrite16, 5, 1, 0x08), DataDirection::kToDevice, one_block);
    REQUIRE(fua.needs_io());
    CHECK(fua.ops[0].kind == BlockOpKind::kWrite);
    CHECK(fua.ops[0].fua);
    CHECK(fua.ops[0].offset == 5 * kBlockSize);
    CHECK_FALSE(f.run(cdb16(kWrite16, 5, 1), DataDirection::kToDevice, one_block).ops[0].fua);
}

TEST_CASE("scsi: a read-only unit refuses writes with DATA PROTECT and reads normally", "[storage][scsi]") {
    Fixture f(disk(true));
    MemoryBuffer one_block(kBlockSize);
    check_sense(f.run(cdb10(kWrite10, 0, 1), DataDirection::kToDevice, one_block), kSenseDataProtect, kWriteProtected);
    check_sense(f.run(cdb16(kWrite16, 0, 1), DataDirection::kToDevice, one_block), kSenseDataProtect, kWriteProtected);
    CHECK(f.run(cdb10(kRead10, 0, 1), DataDirection::kFromDevice, one_block).needs_io());
    check_good(f.run(cdb10(kSynchronizeCache10, 0, 0)), 0);  // nothing to flush
}

TEST_CASE("scsi: SYNCHRONIZE CACHE (10)/(16) flushes; its range is checked", "[storage][scsi]") {
    Fixture f;
    const Execution flush = f.run(cdb10(kSynchronizeCache10, 0, 0));
    REQUIRE(flush.needs_io());
    CHECK(flush.ops[0].kind == BlockOpKind::kFlush);
    CHECK(f.run(cdb16(kSynchronizeCache16, kBlocks - 1, 1)).needs_io());
    CHECK(f.run(cdb10(kSynchronizeCache10, 0, 0, 0x02)).needs_io());  // IMMED: served synchronously
    check_sense(f.run(cdb16(kSynchronizeCache16, kBlocks - 1, 2)), kSenseIllegalRequest, kLbaOutOfRange);
    check_sense(f.run(cdb10(kSynchronizeCache10, kBlocks, 0)), kSenseIllegalRequest, kLbaOutOfRange);
}

namespace {

std::vector<uint8_t> unmap_cdb(uint16_t parameter_length, uint8_t byte1 = 0) {
    std::vector<uint8_t> cdb(10, 0);
    cdb[0] = kUnmap;
    cdb[1] = byte1;
    store_be16(&cdb[7], parameter_length);
    return cdb;
}

MemoryBuffer unmap_list(const std::vector<std::pair<uint64_t, uint32_t>>& extents) {
    MemoryBuffer list(static_cast<uint32_t>(8 + 16 * extents.size()), 0);
    store_be16(&list.bytes[0], static_cast<uint16_t>(6 + 16 * extents.size()));
    store_be16(&list.bytes[2], static_cast<uint16_t>(16 * extents.size()));
    for (size_t i = 0; i < extents.size(); ++i) {
        store_be64(&list.bytes[8 + 16 * i], extents[i].first);
        store_be32(&list.bytes[8 + 16 * i + 8], extents[i].second);
    }
    return list;
}

}  // namespace

TEST_CASE("scsi: UNMAP punches holes: descriptor count, LBA range and list checks", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer one = unmap_list({{8, 16}});
    const Execution punched = f.run(unmap_cdb(one.size()), DataDirection::kToDevice, one);
    REQUIRE(punched.op_count == 1);
    CHECK(punched.ops[0].kind == BlockOpKind::kPunchHole);
    CHECK(punched.ops[0].offset == 8 * kBlockSize);
    CHECK(punched.ops[0].length == 16 * kBlockSize);

    std::vector<std::pair<uint64_t, uint32_t>> extents;
    for (uint32_t i = 0; i < kMaxUnmapDescriptors; ++i) extents.push_back({i * 10, 2});
    MemoryBuffer most = unmap_list(extents);
    CHECK(f.run(unmap_cdb(most.size()), DataDirection::kToDevice, most).op_count == kMaxUnmapDescriptors);
    extents.push_back({500, 1});
    MemoryBuffer too_many = unmap_list(extents);
    const Execution refused = f.run(unmap_cdb(too_many.size()), DataDirection::kToDevice, too_many);
    check_sense(refused, kSenseIllegalRequest, kInvalidFieldInParameterList);
    CHECK_FALSE(refused.completion.sense.field.in_cdb);
    CHECK(refused.completion.sense.field.byte == 2);

    MemoryBuffer at_end = unmap_list({{kBlocks - 4, 4}});
    CHECK(f.run(unmap_cdb(at_end.size()), DataDirection::kToDevice, at_end).op_count == 1);
    MemoryBuffer past_end = unmap_list({{kBlocks - 4, 5}});
    check_sense(f.run(unmap_cdb(past_end.size()), DataDirection::kToDevice, past_end), kSenseIllegalRequest, kLbaOutOfRange);

    Fixture big(disk(false, uint64_t{1} << 24));
    MemoryBuffer largest = unmap_list({{0, kMaxUnmapBlocks}});
    CHECK(big.run(unmap_cdb(largest.size()), DataDirection::kToDevice, largest).op_count == 1);
    MemoryBuffer larger = unmap_list({{0, kMaxUnmapBlocks + 1}});
    const Execution too_long = big.run(unmap_cdb(larger.size()), DataDirection::kToDevice, larger);
    check_sense(too_long, kSenseIllegalRequest, kInvalidFieldInParameterList);
    CHECK(too_long.completion.sense.field.byte == 16);  // the descriptor's NUMBER OF LOGICAL BLOCKS

    MemoryBuffer with_empty = unmap_list({{0, 0}, {4, 4}});
    CHECK(f.run(unmap_cdb(with_empty.size()), DataDirection::kToDevice, with_empty).op_count == 1);  // zero blocks: skipped
    MemoryBuffer only_empty = unmap_list({{0, 0}});
    check_good(f.run(unmap_cdb(only_empty.size()), DataDirection::kToDevice, only_empty), 0);

    check_good(f.run(unmap_cdb(0), DataDirection::kToDevice, one), 0);  // nothing to do
    check_sense(f.run(unmap_cdb(7), DataDirection::kToDevice, one), kSenseIllegalRequest, kParameterListLengthError);
    check_invalid_cdb_field(f.run(unmap_cdb(one.size() + 1), DataDirection::kToDevice, one), 7);  // more than the buffer
    check_invalid_cdb_field(f.run(unmap_cdb(one.size(), 0x01), DataDirection::kToDevice, one), 1, 0);  // ANCHOR
    MemoryBuffer odd = unmap_list({{8, 16}});
    store_be16(&odd.bytes[2], 15);  // not a whole descriptor
    check_sense(f.run(unmap_cdb(odd.size()), DataDirection::kToDevice, odd), kSenseIllegalRequest, kInvalidFieldInParameterList);
    MemoryBuffer claims_more = unmap_list({{8, 16}});
    store_be16(&claims_more.bytes[2], 32);  // two descriptors in a one-descriptor list
    check_sense(f.run(unmap_cdb(claims_more.size()), DataDirection::kToDevice, claims_more), kSenseIllegalRequest,
                kInvalidFieldInParameterList);
    CHECK(f.run(unmap_cdb(one.size()), DataDirection::kFromDevice, one).completion.kind == CompletionKind::kMalformedRequest);

    Fixture read_only(disk(true));
    check_sense(read_only.run(unmap_cdb(one.size()), DataDirection::kToDevice, one), kSenseDataProtect, kWriteProtected);
}

TEST_CASE("scsi: host I/O outcomes become completions and sense data", "[storage][scsi]") {
    Fixture f;
    MemoryBuffer buffer(8 * kBlockSize);
    const Execution read = f.run(cdb10(kRead10, 100, 8), DataDirection::kFromDevice, buffer);
    REQUIRE(read.needs_io());
    CHECK(f.unit.complete_block_io(read, BlockIoResult{}).transferred == 8 * kBlockSize);

    Completion eio = f.unit.complete_block_io(read, BlockIoResult{EIO, false, 0, 0});
    CHECK(eio.kind == CompletionKind::kCheckCondition);
    CHECK(eio.sense.key == kSenseMediumError);
    CHECK(eio.sense.code == kUnrecoveredReadError);
    CHECK(eio.sense.has_information);
    CHECK(eio.sense.information == 100);
    CHECK(eio.transferred == 0);

    const Execution write = f.run(cdb10(kWrite10, 100, 8), DataDirection::kToDevice, buffer);
    const Completion short_write = f.unit.complete_block_io(write, BlockIoResult{0, true, 0, 3 * kBlockSize});
    CHECK(short_write.sense.key == kSenseMediumError);
    CHECK(short_write.sense.code == kWriteError);
    CHECK(short_write.sense.information == 103);  // the first block not written

    const Completion full = f.unit.complete_block_io(write, BlockIoResult{ENOSPC, false, 0, 0});
    CHECK(full.sense.key == kSenseDataProtect);
    CHECK(full.sense.code == kSpaceAllocationFailed);
    const Completion other = f.unit.complete_block_io(write, BlockIoResult{EINVAL, false, 0, 0});
    CHECK(other.sense.key == kSenseHardwareError);
    CHECK(other.sense.code == kInternalTargetFailure);

    const Execution flush = f.run(cdb10(kSynchronizeCache10, 0, 0));
    const Completion flush_failed = f.unit.complete_block_io(flush, BlockIoResult{EIO, false, 0, 0});
    CHECK(flush_failed.sense.key == kSenseMediumError);
    CHECK(flush_failed.sense.code == kWriteError);
}

TEST_CASE("scsi: fixed-format sense bytes", "[storage][scsi]") {
    uint8_t bytes[20];
    std::memset(bytes, 0xaa, sizeof bytes);
    CHECK(encode_fixed_sense(Sense::of(kSenseMediumError, kUnrecoveredReadError).with_information(0x01020304), bytes, sizeof bytes) ==
          kFixedSenseLength);
    CHECK(bytes[0] == 0xf0);  // current, VALID
    CHECK(bytes[2] == kSenseMediumError);
    CHECK(load_be32(&bytes[3]) == 0x01020304);
    CHECK(bytes[7] == 10);
    CHECK(bytes[12] == 0x11);
    CHECK(bytes[13] == 0x00);
    CHECK(bytes[18] == 0xaa);  // nothing past 18 bytes

    CHECK(encode_fixed_sense(Sense::invalid_cdb_field(7, 3), bytes, sizeof bytes) == kFixedSenseLength);
    CHECK(bytes[0] == 0x70);
    CHECK(bytes[15] == (0x80 | 0x40 | 0x08 | 3));  // SKSV, C/D, BPV, bit 3
    CHECK(load_be16(&bytes[16]) == 7);
    CHECK(encode_fixed_sense(Sense::invalid_parameter_field(2), bytes, 8) == 8);  // truncated to the room given
}
