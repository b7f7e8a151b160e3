// A formatted in-memory volume, mounted, for one test.
#pragma once

#include <catch2/catch.hpp>
#include <string>

#include "core/volume.h"
#include "host/file_device.h"
#include "host/host_platform.h"
#include "host/volume_handle.h"

namespace txfs::test {

struct Geometry {
    uint64_t bytes = 2048 * kBlockSize;
    uint32_t inodes = 256;
    uint32_t log_blocks = 256;
};

class Fixture {
public:
    explicit Fixture(Geometry geometry = {}, MountOptions options = {}) : device(geometry.bytes) {
        FormatOptions format;
        format.inode_count = geometry.inodes;
        format.log_blocks = geometry.log_blocks;
        format.volume_id = 0x1234;
        REQUIRE(Volume::format(device, platform, format) == Status::kOk);
        mount(options);
    }

    void mount(MountOptions options = {}) {
        Volume* mounted = nullptr;
        REQUIRE(Volume::mount(device, platform, options, &mounted) == Status::kOk);
        volume.reset(mounted);
    }
    void remount(MountOptions options = {}) {
        REQUIRE(volume.release()->unmount() == Status::kOk);
        mount(options);
    }
    // As if the power failed: nothing more reaches the device.
    void crash_and_remount(MountOptions options = {}) {
        volume.reset();
        mount(options);
    }

    Transaction* begin() {
        Transaction* tx = nullptr;
        REQUIRE(volume->begin(&tx) == Status::kOk);
        return tx;
    }
    // One committed transaction writing `content` to `path` (created if missing).
    void put(const std::string& path, const std::string& content) {
        Transaction* tx = begin();
        const Status created = volume->create_file(tx, path.c_str());
        REQUIRE((created == Status::kOk || created == Status::kAlreadyExists));
        REQUIRE(volume->truncate_file(tx, path.c_str(), 0) == Status::kOk);
        REQUIRE(volume->write_file(tx, path.c_str(), 0, content.data(), content.size()) == Status::kOk);
        REQUIRE(volume->commit(tx) == Status::kOk);
    }
    std::string get(const std::string& path, Transaction* tx = nullptr, Status* status = nullptr) {
        return host::read_whole_file(*volume, tx, path, status);
    }
    uint32_t fsck_errors(std::string* messages = nullptr) {
        CheckSummary summary;
        std::string text;
        REQUIRE(volume->check(
                    [](void* context, Finding finding, const char* message) {
                        if (finding == Finding::kError) *static_cast<std::string*>(context) += std::string(message) + "\n";
                    },
                    &text, &summary) == Status::kOk);
        if (messages) *messages = text;
        return summary.errors;
    }

    host::HostPlatform platform;
    host::MemoryDevice device;
    host::VolumePtr volume;
};

inline std::string pattern(size_t size, int seed) {
    std::string bytes(size, '\0');
    for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>((i * 13 + seed * 101 + i / 4096) & 0xff);
    return bytes;
}

}  // namespace txfs::test
