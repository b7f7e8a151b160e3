// On-disk format basics: checksums and the layout limits mkfs and mount share.
#include <catch2/catch.hpp>
#include <cstring>

#include "core/crc32c.h"
#include "core/format.h"
#include "fixture.h"

using namespace txfs;

TEST_CASE("CRC32C matches the standard check value and composes") {
    REQUIRE(crc32c("123456789", 9) == 0xe3069283u);
    REQUIRE(crc32c("", 0) == 0);
    const std::string text = "transactional ntfs and registry";
    REQUIRE(crc32c(text.data() + 10, text.size() - 10, crc32c(text.data(), 10)) == crc32c(text.data(), text.size()));
    uint8_t with_field[12] = {1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd, 9, 10, 11, 12};
    uint8_t zeroed[12];
    std::memcpy(zeroed, with_field, 12);
    std::memset(zeroed + 4, 0, 4);
    REQUIRE(crc32c_with_zero_field(with_field, 12, 4) == crc32c(zeroed, 12));
}

TEST_CASE("Layout: inode count and log size at the limits") {
    Layout layout;
    REQUIRE(compute_layout(1000, kMinInodes, kMinLogBlocks, layout));
    REQUIRE_FALSE(compute_layout(1000, kMinInodes - kInodesPerBlock, kMinLogBlocks, layout));
    REQUIRE_FALSE(compute_layout(1000, kMinInodes + 1, kMinLogBlocks, layout));  // not a whole inode block
    REQUIRE_FALSE(compute_layout(1000, kMinInodes, kMinLogBlocks - 1, layout));
    // Exactly one data block fits; one block fewer does not.
    REQUIRE(compute_layout(1000, kMinInodes, kMinLogBlocks, layout));
    const uint64_t minimum = layout.data_start + 1;
    REQUIRE(compute_layout(minimum, kMinInodes, kMinLogBlocks, layout));
    REQUIRE(layout.data_start == minimum - 1);
    REQUIRE_FALSE(compute_layout(minimum - 1, kMinInodes, kMinLogBlocks, layout));
    REQUIRE(compute_layout(0xffffffffull, kMinInodes, kMinLogBlocks, layout));
    REQUIRE_FALSE(compute_layout(0x100000000ull, kMinInodes, kMinLogBlocks, layout));
}

TEST_CASE("mkfs refuses a volume id of zero and a device too small") {
    host::HostPlatform platform;
    host::MemoryDevice small(8 * kBlockSize);
    FormatOptions options;
    options.volume_id = 1;
    options.inode_count = kMinInodes;
    options.log_blocks = kMinLogBlocks;
    REQUIRE(Volume::format(small, platform, options) == Status::kInvalidArgument);
    host::MemoryDevice enough(64 * kBlockSize);
    REQUIRE(Volume::format(enough, platform, options) == Status::kOk);
    options.volume_id = 0;
    REQUIRE(Volume::format(enough, platform, options) == Status::kInvalidArgument);
}

TEST_CASE("A fresh volume is empty - clean and leaks no memory after unmount") {
    host::HostPlatform platform;
    host::MemoryDevice device(512 * kBlockSize);
    FormatOptions options;
    options.volume_id = 7;
    options.inode_count = 64;
    options.log_blocks = 64;
    REQUIRE(Volume::format(device, platform, options) == Status::kOk);
    {
        Volume* volume = nullptr;
        REQUIRE(Volume::mount(device, platform, MountOptions{}, &volume) == Status::kOk);
        REQUIRE(host::dump_volume(*volume).empty());
        CheckSummary summary;
        REQUIRE(volume->check(nullptr, nullptr, &summary) == Status::kOk);
        REQUIRE(summary.errors == 0);
        REQUIRE(summary.inodes_in_use == 2);  // the two roots
        REQUIRE(volume->unmount() == Status::kOk);
    }
    REQUIRE(platform.outstanding_bytes() == 0);
}
