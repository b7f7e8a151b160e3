// libFuzzer target: mount, fsck, repair and read back damaged txfs images; never a crash, hang,
// leak or sanitizer report, whatever the bytes.
//
// A valid image (files, a large file with an indirect block, registry values, a non-empty log) is
// built once. Each input edits a copy of it: byte 0 holds flags, then 5-byte edits (u32 offset,
// u8 xor). With flag bit 0 the checksums of the superblocks, bitmap blocks, inodes and log records
// are recomputed after editing, so the edits reach the semantic checks behind the checksums.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/crc32c.h"
#include "core/volume.h"
#include "host/file_device.h"
#include "host/host_platform.h"
#include "host/volume_handle.h"

using namespace txfs;

namespace {

std::vector<uint8_t> build_image() {
    host::MemoryDevice device(128 * kBlockSize);
    host::HostPlatform platform;
    FormatOptions format;
    format.inode_count = 32;
    format.log_blocks = 24;
    format.volume_id = 0xf022;
    Volume::format(device, platform, format);
    MountOptions options;
    options.repair_worker = false;
    Volume* volume = nullptr;
    Volume::mount(device, platform, options, &volume);
    const std::string big(60000, 'b');
    Transaction* tx = nullptr;
    volume->begin(&tx);
    volume->create_directory(tx, "/d");
    volume->create_file(tx, "/d/big");
    volume->write_file(tx, "/d/big", 0, big.data(), big.size());
    volume->create_key(tx, "K");
    volume->set_value(tx, "K", "s", ValueType::kString, "text", 4);
    volume->commit(tx);
    volume->checkpoint();
    volume->begin(&tx);
    volume->create_file(tx, "/logged");
    volume->write_file(tx, "/logged", 0, "in the log", 10);
    const uint32_t number = 5;
    volume->set_value(tx, "K", "n", ValueType::kU32, &number, 4);
    volume->commit(tx);
    Volume::destroy(volume);  // leave the last record in the log
    return device.bytes();
}

template <typename T>
void reseal(uint8_t* at, size_t field) {
    T copy;
    std::memcpy(&copy, at, sizeof(T));
    const uint32_t crc = crc32c_with_zero_field(&copy, sizeof(T), field);
    std::memcpy(at + field, &crc, 4);
}

void reseal_all(std::vector<uint8_t>& image) {
    for (uint32_t copy = 0; copy < 2; ++copy) reseal<Superblock>(image.data() + copy * kBlockSize, offsetof(Superblock, crc));
    Superblock s;
    std::memcpy(&s, image.data(), sizeof(s));
    Layout layout;
    if (!compute_layout(s.block_count, s.inode_count, s.log_blocks, layout) || layout.data_start > image.size() / kBlockSize) return;
    for (uint32_t start : {layout.meta_start, layout.mirror_start}) {
        for (uint32_t index = 0; index < layout.bitmap_blocks; ++index) {
            uint8_t* block = image.data() + uint64_t{start + index} * kBlockSize;
            std::memset(block + offsetof(BitmapBlockHeader, crc), 0, 4);
            const uint32_t crc = crc32c(block, kBlockSize);
            std::memcpy(block + offsetof(BitmapBlockHeader, crc), &crc, 4);
        }
        for (uint32_t index = 0; index < layout.inode_table_blocks * kInodesPerBlock; ++index)
            reseal<DiskInode>(image.data() + uint64_t{start + layout.bitmap_blocks} * kBlockSize + index * sizeof(DiskInode),
                              offsetof(DiskInode, crc));
    }
    for (uint32_t index = 0; index < layout.log_blocks; ++index) {
        uint8_t* block = image.data() + uint64_t{layout.log_start + index} * kBlockSize;
        LogRecordHeader header;
        std::memcpy(&header, block, sizeof(header));
        if (header.magic != kLogRecordMagic) continue;
        if (header.payload_bytes <= kBlockSize - sizeof(header)) {  // single-block records only
            header.payload_crc = crc32c(block + sizeof(header), header.payload_bytes);
            std::memcpy(block, &header, sizeof(header));
        }
        reseal<LogRecordHeader>(block, offsetof(LogRecordHeader, header_crc));
    }
}

void exercise(const std::vector<uint8_t>& image, bool read_only) {
    host::MemoryDevice device(image.size());
    device.bytes() = image;
    host::HostPlatform platform;
    MountOptions options;
    options.read_only = read_only;
    options.repair_worker = false;
    Volume* mounted = nullptr;
    if (Volume::mount(device, platform, options, &mounted) != Status::kOk) return;
    host::VolumePtr volume(mounted);
    volume->check(nullptr, nullptr, nullptr);
    (void)host::dump_volume(*volume);
    volume->repair_now();
    Transaction* tx = nullptr;
    if (!read_only && volume->begin(&tx) == Status::kOk) {
        volume->write_file(tx, "/logged", 3, "xyz", 3);
        volume->set_value(tx, "K", "s", ValueType::kString, "new", 3);
        volume->create_file(tx, "/fresh");
        volume->commit(tx);
    }
    (void)host::dump_volume(*volume);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::vector<uint8_t> base = build_image();
    if (size == 0) return 0;
    std::vector<uint8_t> image = base;
    for (size_t at = 1; at + 5 <= size; at += 5) {
        uint32_t offset;
        std::memcpy(&offset, data + at, 4);
        image[offset % image.size()] ^= data[at + 4];
    }
    if (data[0] & 1) reseal_all(image);
    exercise(image, true);
    exercise(image, false);
    return 0;
}
