// vmm/storage/disk_image: every image problem is a config error naming disks[i].path, found
// before any VM exists; sizes at the exact fit and one past; locks against other disks and
// processes; read-only images share; cache "none" really is O_DIRECT.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <thread>

#include "config/config.h"
#include "storage/disk_image.h"
#include "storage_test_support.h"

using namespace hvkvm::vmm;
using hvkvm::storage::testing::ScratchImage;

namespace {

DiskConfig config_for(const std::filesystem::path& path, bool read_only = false, DiskCache cache = DiskCache::kWriteback) {
    DiskConfig disk;
    disk.id = "data";
    disk.path = path;
    disk.read_only = read_only;
    disk.cache = cache;
    return disk;
}

std::string refusal(const DiskConfig& disk, const std::string& key = "disks[0]") {
    try {
        open_disk_image(disk, key);
    } catch (const ConfigError& error) {
        CHECK(error.key_path() == key + ".path");
        return error.what();
    }
    FAIL("the image was accepted");
    return "";
}

bool o_direct_supported(const std::filesystem::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (fd < 0) return false;
    ::close(fd);
    return true;
}

}  // namespace

TEST_CASE("disk image: missing, a directory, empty, unaligned", "[storage][disk-image]") {
    ScratchImage image(1 << 20);
    CHECK_THAT(refusal(config_for(image.directory() / "missing.img")), Catch::Contains("cannot open"));
    CHECK_THAT(refusal(config_for(image.directory(), true)), Catch::Contains("not a regular file or block device"));
    ScratchImage empty(0);
    CHECK_THAT(refusal(config_for(empty.path())), Catch::Contains("is empty"));
    ScratchImage unaligned(513);
    CHECK_THAT(refusal(config_for(unaligned.path())), Catch::Contains("not a multiple of 512"));
    ScratchImage one_sector(512);
    CHECK(open_disk_image(config_for(one_sector.path()), "disks[0]").sectors() == 1);
}

TEST_CASE("disk image: unreadable", "[storage][disk-image]") {
    if (::geteuid() == 0) {
        WARN("SKIPPED: running as root, which reads any file: permissions cannot make an image unreadable");
        return;
    }
    ScratchImage image(1 << 20);
    std::filesystem::permissions(image.path(), std::filesystem::perms::none);
    CHECK_THAT(refusal(config_for(image.path())), Catch::Contains("Permission denied"));
}

TEST_CASE("disk image: size_mib at the exact size, one sector short, one sector long", "[storage][disk-image]") {
    ScratchImage exact(1 << 20), short_image((1 << 20) - 512), long_image((1 << 20) + 512);
    DiskConfig disk = config_for(exact.path());
    disk.size_mib = 1;
    CHECK(open_disk_image(disk, "disks[0]").size_bytes == (1u << 20));
    disk.path = short_image.path();
    CHECK_THAT(refusal(disk), Catch::Contains("too short"));
    disk.path = long_image.path();
    CHECK_THAT(refusal(disk), Catch::Contains("too long"));
}

TEST_CASE("disk image: locked against a second disk of this VM and against another process", "[storage][disk-image]") {
    ScratchImage image(1 << 20);
    const std::filesystem::path alias = image.directory() / "alias.img";
    std::filesystem::create_symlink(image.path(), alias);
    // The config refuses the same path twice; another name for the same file is caught by the lock.
    const std::vector<DiskConfig> disks = {config_for(image.path()), config_for(alias)};
    try {
        open_disk_images(disks);
        FAIL("the same image was opened twice");
    } catch (const ConfigError& error) {
        CHECK(error.key_path() == "disks[1].path");
        CHECK_THAT(error.what(), Catch::Contains("in use"));
    }

    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t holder = ::fork();
    if (holder == 0) {
        try {
            DiskImage held = open_disk_image(config_for(image.path()), "disks[0]");
            const char byte = 'x';
            [[maybe_unused]] ssize_t put = ::write(ready[1], &byte, 1);
            ::pause();
        } catch (...) {
        }
        ::_exit(1);
    }
    char byte;
    REQUIRE(::read(ready[0], &byte, 1) == 1);
    CHECK_THAT(refusal(config_for(image.path())), Catch::Contains("in use"));
    CHECK_THAT(refusal(config_for(image.path(), true)), Catch::Contains("in use"));  // not even to read
    ::kill(holder, SIGKILL);
    ::waitpid(holder, nullptr, 0);
    ::close(ready[0]);
    ::close(ready[1]);
    CHECK(open_disk_image(config_for(image.path()), "disks[0]").fd.valid());  // the lock died with it
}

// What the root partition's io_uring does to the VMM's images: another reference to the open file
// (here a dup, closed by a thread later) keeps the lock after the VMM closed its own.
TEST_CASE("disk image: released only once every other reference is gone, within the limit", "[storage][disk-image]") {
    using namespace std::chrono_literals;
    ScratchImage image(1 << 20);
    std::vector<DiskImage> disks;
    disks.push_back(open_disk_image(config_for(image.path()), "disks[0]"));
    UniqueFd lingering(::dup(disks[0].fd.get()));
    REQUIRE(lingering.valid());
    const auto start = std::chrono::steady_clock::now();
    std::thread ring_teardown([&] {
        std::this_thread::sleep_for(50ms);
        lingering.reset();
    });
    CHECK(release_disk_images(disks, 2000ms));
    const auto waited = std::chrono::steady_clock::now() - start;
    ring_teardown.join();
    CHECK(disks.empty());
    CHECK(waited >= 50ms);
    CHECK(open_disk_image(config_for(image.path()), "disks[0]").fd.valid());  // free for the next VM

    // A reference that stays: the limit ends the wait, and says so.
    disks.push_back(open_disk_image(config_for(image.path()), "disks[0]"));
    UniqueFd kept(::dup(disks[0].fd.get()));
    const auto again = std::chrono::steady_clock::now();
    CHECK_FALSE(release_disk_images(disks, 100ms));
    CHECK(std::chrono::steady_clock::now() - again >= 100ms);
    CHECK_THAT(refusal(config_for(image.path())), Catch::Contains("in use"));
}

TEST_CASE("disk image: read-only images share their lock; a writer is still refused", "[storage][disk-image]") {
    ScratchImage image(1 << 20);
    DiskImage first = open_disk_image(config_for(image.path(), true), "disks[0]");
    DiskImage second = open_disk_image(config_for(image.path(), true), "disks[1]");
    CHECK((::fcntl(first.fd.get(), F_GETFL) & O_ACCMODE) == O_RDONLY);
    CHECK_THAT(refusal(config_for(image.path())), Catch::Contains("in use"));
}

TEST_CASE("disk image: cache none opens with O_DIRECT, writeback without", "[storage][disk-image]") {
    ScratchImage image(1 << 20);
    if (!o_direct_supported(image.path())) {
        WARN("SKIPPED: the temporary directory's file system has no O_DIRECT");
        return;
    }
    {
        DiskImage direct = open_disk_image(config_for(image.path(), false, DiskCache::kNone), "disks[0]");
        CHECK((::fcntl(direct.fd.get(), F_GETFL) & O_DIRECT) != 0);
    }
    DiskImage cached = open_disk_image(config_for(image.path()), "disks[0]");
    CHECK((::fcntl(cached.fd.get(), F_GETFL) & O_DIRECT) == 0);
}

TEST_CASE("disk image: a device takes the disks of its bus, in order", "[storage][disk-image]") {
    ScratchImage a(1 << 20), b(1 << 20), c(1 << 20);
    std::vector<DiskConfig> configs = {config_for(a.path()), config_for(b.path()), config_for(c.path())};
    configs[1].bus = DiskBus::kIde;
    configs[0].id = "a";
    configs[1].id = "b";
    configs[2].id = "c";
    std::vector<DiskImage> images = open_disk_images(configs);
    std::vector<DiskImage> vmbus = take_disks(images, DiskBus::kVmbus);
    REQUIRE(vmbus.size() == 2);
    CHECK(vmbus[0].config.id == "a");
    CHECK(vmbus[1].config.id == "c");
    REQUIRE(images.size() == 1);
    CHECK(images[0].config.id == "b");
}

TEST_CASE("config: debug.disk_fault names a disk, an operation and an error", "[storage][config]") {
    ScratchImage image(1 << 20);
    std::ofstream(image.directory() / "kernel.elf") << "not checked here";
    const std::string prefix = R"({"kernel": {"path": "kernel.elf"}, "disks": [{"id": "data", "path": "disk.img"}], "debug": {"disk_fault": )";
    auto parse = [&](const std::string& fault) { return parse_config(prefix + fault + "}}", image.directory(), {}); };
    auto error_of = [&](const std::string& fault) -> std::string {
        try {
            parse(fault);
        } catch (const ConfigError& error) {
            return error.what();
        }
        return "";
    };
    const VmConfig config = parse(R"({"disk": "data", "operation": "write", "nth": 3, "count": 2, "error": "enospc"})");
    REQUIRE(config.debug.disk_fault);
    CHECK(config.debug.disk_fault->disk == "data");
    CHECK(config.debug.disk_fault->fault.operation == hvkvm::storage::FaultOperation::kWrite);
    CHECK(config.debug.disk_fault->fault.effect == hvkvm::storage::FaultEffect::kEnospc);
    CHECK(config.debug.disk_fault->fault.nth == 3);
    CHECK(config.debug.disk_fault->fault.count == 2);
    CHECK(parse(R"({"disk": "data", "operation": "read", "error": "short"})").debug.disk_fault->fault.nth == 1);

    CHECK_THAT(error_of(R"({"disk": "other", "operation": "read", "error": "eio"})"),
               Catch::StartsWith("debug.disk_fault.disk: \"other\" is not the id of a disk"));
    CHECK_THAT(error_of(R"({"disk": "data", "operation": "flush", "error": "short"})"), Catch::StartsWith("debug.disk_fault.error"));
    CHECK_THAT(error_of(R"({"disk": "data", "operation": "read", "error": "eio", "nth": 0})"),
               Catch::StartsWith("debug.disk_fault.nth: must be 1.."));
    CHECK_THAT(error_of(R"({"disk": "data", "error": "eio"})"), Catch::StartsWith("debug.disk_fault.operation: missing"));
    CHECK_THAT(error_of(R"({"disk": "data", "operation": "trim", "error": "eio"})"), Catch::StartsWith("debug.disk_fault.operation"));
    CHECK_THAT(error_of(R"({"disk": "data", "operation": "read", "error": "eio", "every": 2})"),
               Catch::StartsWith("debug.disk_fault.every: unknown key"));
}
