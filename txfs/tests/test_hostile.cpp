// Untrusted images: mount and fsck must give a clear error or take only the damaged object
// offline, never crash or hang, whatever the bytes on disk.
#include <catch2/catch.hpp>
#include <cstring>
#include <random>

#include "core/crc32c.h"
#include "fixture.h"

using namespace txfs;
using txfs::test::Fixture;
using txfs::test::pattern;

namespace {

MountOptions quiet(bool read_only = false) {
    MountOptions options;
    options.read_only = read_only;
    options.repair_worker = false;
    return options;
}

test::Geometry small_geometry() {
    test::Geometry geometry;
    geometry.bytes = 256 * kBlockSize;
    geometry.inodes = 64;
    geometry.log_blocks = 32;
    return geometry;
}

// A small volume with some files, keys and a non-empty log.
struct Populated : Fixture {
    Populated() : Fixture(small_geometry(), quiet()) {
        Transaction* tx = begin();
        REQUIRE(volume->create_directory(tx, "/d") == Status::kOk);
        REQUIRE(volume->create_file(tx, "/d/f") == Status::kOk);
        const std::string data = pattern(60000, 1);
        REQUIRE(volume->write_file(tx, "/d/f", 0, data.data(), data.size()) == Status::kOk);
        REQUIRE(volume->create_key(tx, "K") == Status::kOk);
        REQUIRE(volume->set_value(tx, "K", "v", ValueType::kString, "value", 5) == Status::kOk);
        REQUIRE(volume->commit(tx) == Status::kOk);
        REQUIRE(volume->checkpoint() == Status::kOk);
        put("/g", "in the log only");
    }
};

// Mounts (both ways) and, when that succeeds, runs fsck and reads everything.
void exercise(std::vector<uint8_t> image) {
    host::HostPlatform platform;
    for (bool read_only : {true, false}) {
        host::MemoryDevice device(image.size());
        device.bytes() = image;
        Volume* mounted = nullptr;
        const Status status = Volume::mount(device, platform, quiet(read_only), &mounted);
        if (status != Status::kOk) {
            REQUIRE((status == Status::kBadImage || status == Status::kIoError));
            continue;
        }
        host::VolumePtr volume(mounted);
        CheckSummary summary;
        REQUIRE(volume->check(nullptr, nullptr, &summary) == Status::kOk);
        (void)host::dump_volume(*volume);
        volume->repair_now();
        (void)host::dump_volume(*volume);
    }
}

// An image mounted read-write (the mount must succeed).
struct MountedImage {
    explicit MountedImage(const std::vector<uint8_t>& image) : device(image.size()) {
        device.bytes() = image;
        Volume* mounted = nullptr;
        REQUIRE(Volume::mount(device, platform, quiet(), &mounted) == Status::kOk);
        volume.reset(mounted);
    }
    host::HostPlatform platform;
    host::MemoryDevice device;
    host::VolumePtr volume;
};

// The superblock mount would pick (both copies valid here; the higher sequence wins).
Superblock current_superblock(const std::vector<uint8_t>& image) {
    Superblock a, b;
    std::memcpy(&a, image.data(), sizeof(a));
    std::memcpy(&b, image.data() + kBlockSize, sizeof(b));
    return b.sequence > a.sequence ? b : a;
}

void seal(DiskInode& inode) { inode.crc = crc32c_with_zero_field(&inode, sizeof(inode), offsetof(DiskInode, crc)); }

DiskInode make_inode(uint32_t number, NodeType type, uint32_t parent, const std::string& name) {
    DiskInode inode{};
    inode.number = number;
    inode.type = static_cast<uint16_t>(type);
    inode.parent = parent;
    inode.name_length = static_cast<uint8_t>(name.size());
    std::memcpy(inode.name, name.data(), name.size());
    return inode;
}

// Writes a checksum-valid (but possibly nonsensical) inode into both table copies.
void plant_inode(std::vector<uint8_t>& image, const Superblock& s, DiskInode inode) {
    seal(inode);
    for (uint32_t start : {s.meta_start, s.mirror_start}) {
        const uint64_t offset = (uint64_t{start} + s.bitmap_blocks + inode.number / kInodesPerBlock) * kBlockSize +
                                uint64_t{inode.number % kInodesPerBlock} * sizeof(DiskInode);
        std::memcpy(image.data() + offset, &inode, sizeof(inode));
    }
}

}  // namespace

TEST_CASE("Garbage - zeroed and truncated images are refused with kBadImage") {
    host::HostPlatform platform;
    std::mt19937_64 random(5);
    host::MemoryDevice garbage(128 * kBlockSize);
    for (auto& byte : garbage.bytes()) byte = static_cast<uint8_t>(random());
    Volume* volume = nullptr;
    REQUIRE(Volume::mount(garbage, platform, quiet(), &volume) == Status::kBadImage);
    host::MemoryDevice zeros(128 * kBlockSize);
    REQUIRE(Volume::mount(zeros, platform, quiet(), &volume) == Status::kBadImage);
    host::MemoryDevice tiny(kBlockSize);
    REQUIRE(Volume::mount(tiny, platform, quiet(), &volume) == Status::kBadImage);

    Populated f;
    f.volume.reset();
    auto image = f.device.bytes();
    image.resize(image.size() - kBlockSize);  // shorter than the superblock says
    host::MemoryDevice truncated(image.size());
    truncated.bytes() = image;
    REQUIRE(Volume::mount(truncated, platform, quiet(), &volume) == Status::kBadImage);
}

TEST_CASE("One bad superblock copy is survived - both bad is refused") {
    Populated f;
    f.volume.reset();
    auto& bytes = f.device.bytes();
    const auto original = bytes;
    bytes[40] ^= 0xff;  // copy A
    f.mount(quiet());
    REQUIRE(f.get("/g") == "in the log only");
    f.volume.reset();
    bytes = original;
    bytes[kBlockSize + 40] ^= 0xff;  // copy B
    bytes[40] ^= 0xff;               // and A
    Volume* volume = nullptr;
    REQUIRE(Volume::mount(f.device, f.platform, quiet(), &volume) == Status::kBadImage);
}

TEST_CASE("Checksum-valid but impossible inodes go offline alone") {
    Populated f;
    f.volume.reset();
    auto image = f.device.bytes();
    const Superblock s = current_superblock(image);

    DiskInode out_of_range = make_inode(40, NodeType::kFile, kRootDirectory, "bad");
    out_of_range.size = 100;
    out_of_range.direct[0] = BlockRef{0xfffffff0u, 0};  // past the end of the volume
    plant_inode(image, s, out_of_range);

    plant_inode(image, s, make_inode(41, NodeType::kDirectory, 42, "x"));  // two directories, each
    plant_inode(image, s, make_inode(42, NodeType::kDirectory, 41, "y"));  // the other's parent
    plant_inode(image, s, make_inode(43, NodeType::kFile, kRootDirectory, "a/b"));  // a slash in a name

    // A file whose (checksum-valid) indirect block points outside the volume.
    const uint32_t spare = static_cast<uint32_t>(s.block_count - 1);  // unused by the populated files
    std::vector<uint8_t> indirect(kBlockSize, 0);
    const BlockRef outside{0xfffffff0u, 0};
    std::memcpy(indirect.data(), &outside, sizeof(outside));
    std::memcpy(image.data() + uint64_t{spare} * kBlockSize, indirect.data(), kBlockSize);
    DiskInode far = make_inode(44, NodeType::kFile, kRootDirectory, "far");
    far.size = uint64_t{kDirectBlocks + 1} * kBlockSize;
    for (uint32_t i = 0; i < kDirectBlocks; ++i) far.direct[i] = BlockRef{spare - 1 - i, 0};
    far.indirect = BlockRef{spare, crc32c(indirect.data(), kBlockSize)};
    plant_inode(image, s, far);

    MountedImage mounted(image);
    Volume* volume = mounted.volume.get();
    host::HostPlatform& platform = mounted.platform;
    REQUIRE(host::read_whole_file(*volume, nullptr, "/d/f") == pattern(60000, 1));
    REQUIRE(host::read_whole_file(*volume, nullptr, "/g") == "in the log only");
    REQUIRE(platform.logged("references blocks outside the data area"));
    NodeInfo far_info;
    REQUIRE(volume->stat(nullptr, "/far", &far_info) == Status::kOk);
    REQUIRE(far_info.offline);
    NodeInfo info;
    REQUIRE(volume->stat(nullptr, "/bad", &info) == Status::kNotFound);  // not linked: offline
    CheckSummary summary;
    REQUIRE(volume->check(nullptr, nullptr, &summary) == Status::kOk);
    REQUIRE(summary.errors == 5);
    REQUIRE(platform.logged("impossible content"));
    REQUIRE(platform.logged("not reachable"));
}

TEST_CASE("Random byte damage anywhere in the metadata or the log never crashes mount or fsck") {
    Populated f;
    f.volume.reset();
    const auto original = f.device.bytes();
    const Superblock s = current_superblock(original);
    std::mt19937_64 random(11);
    const uint64_t region = uint64_t{s.data_start} * kBlockSize;  // superblocks, metadata, log
    for (int round = 0; round < 150; ++round) {
        auto image = original;
        const int flips = 1 + static_cast<int>(random() % 8);
        for (int i = 0; i < flips; ++i) image[random() % region] ^= static_cast<uint8_t>(1 + random() % 255);
        exercise(image);
    }
}

TEST_CASE("A checksum-valid log record with a hostile operation is not applied") {
    Populated f;
    f.volume.reset();
    auto image = f.device.bytes();
    const Superblock s = current_superblock(image);
    // The last record (the put of /g) sits at the tail: point its first op at a block past the end.
    const uint64_t offset = (uint64_t{s.log_start} + s.log_tail % s.log_blocks) * kBlockSize;
    LogRecordHeader header;
    std::memcpy(&header, image.data() + offset, sizeof(header));
    REQUIRE(header.magic == kLogRecordMagic);
    LogOp op;
    std::memcpy(&op, image.data() + offset + sizeof(header), sizeof(op));
    op.target = 0xffffff00u;
    std::memcpy(image.data() + offset + sizeof(header), &op, sizeof(op));
    header.payload_crc = crc32c(image.data() + offset + sizeof(header), header.payload_bytes);
    header.header_crc = crc32c_with_zero_field(&header, sizeof(header), offsetof(LogRecordHeader, header_crc));
    std::memcpy(image.data() + offset, &header, sizeof(header));

    MountedImage mounted(image);
    Volume* volume = mounted.volume.get();
    host::HostPlatform& platform = mounted.platform;
    REQUIRE(platform.logged("malformed"));
    NodeInfo info;
    REQUIRE(volume->stat(nullptr, "/g", &info) == Status::kNotFound);  // the whole record was refused
    REQUIRE(host::read_whole_file(*volume, nullptr, "/d/f") == pattern(60000, 1));
}
