// Self-healing: a checksum mismatch takes only the damaged object offline, the rest of the volume
// stays readable and writable, and the repair worker restores the object from the log or the
// metadata mirror, or reports that it could not.
#include <atomic>
#include <catch2/catch.hpp>
#include <cstring>
#include <thread>

#include "core/crc32c.h"
#include "fixture.h"

using namespace txfs;
using txfs::test::Fixture;
using txfs::test::pattern;

namespace {

MountOptions without_worker() {
    MountOptions options;
    options.repair_worker = false;
    return options;
}

// The home block (data region) whose content starts with `content`.
uint32_t home_block_of(Fixture& f, const std::string& content) {
    const Superblock& s = f.volume->superblock();
    for (uint64_t block = s.data_start; block < s.block_count; ++block)
        if (std::memcmp(f.device.bytes().data() + block * kBlockSize, content.data(), std::min<size_t>(content.size(), kBlockSize)) == 0)
            return static_cast<uint32_t>(block);
    FAIL("content not found in the data region");
    return 0;
}

void damage(Fixture& f, uint32_t block, size_t offset = 100) {
    f.device.bytes()[uint64_t{block} * kBlockSize + offset] ^= 0x5a;
}

NodeInfo stat(Fixture& f, const char* path) {
    NodeInfo info{};
    REQUIRE(f.volume->stat(nullptr, path, &info) == Status::kOk);
    return info;
}

}  // namespace

TEST_CASE("A corrupt data block takes one file offline - the others stay available - repair from the log") {
    Fixture f({}, without_worker());
    const std::string a = pattern(3 * kBlockSize, 1), b = pattern(5000, 2);
    f.put("/a", a);
    f.put("/b", b);
    REQUIRE(f.volume->checkpoint() == Status::kOk);  // data now at home; the records stay in the log area
    damage(f, home_block_of(f, a.substr(kBlockSize)));

    Status status;
    f.get("/a", nullptr, &status);
    REQUIRE(status == Status::kCorrupt);
    REQUIRE(stat(f, "/a").offline);
    f.get("/a", nullptr, &status);
    REQUIRE(status == Status::kOffline);
    Transaction* tx = f.begin();
    REQUIRE(f.volume->write_file(tx, "/a", 0, "x", 1) == Status::kOffline);
    // The rest of the volume: readable, writable, committable.
    REQUIRE(f.get("/b") == b);
    REQUIRE(f.volume->write_file(tx, "/b", 0, "new", 3) == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/c") == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.get("/b").substr(0, 3) == "new");
    REQUIRE(f.fsck_errors() > 0);  // the offline file is reported
    REQUIRE(f.platform.logged("taken offline"));

    f.volume->repair_now();
    REQUIRE_FALSE(stat(f, "/a").offline);
    REQUIRE(f.get("/a") == a);
    REQUIRE(f.platform.logged("rewritten from the log"));
    REQUIRE(f.platform.logged("back online"));
    REQUIRE(f.volume->stats().repairs_succeeded == 1);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("The background worker repairs while the volume is in use") {
    Fixture f;  // with the repair worker
    const std::string a = pattern(2 * kBlockSize, 3);
    f.put("/a", a);
    f.put("/b", "b");
    REQUIRE(f.volume->checkpoint() == Status::kOk);
    damage(f, home_block_of(f, a));
    Status status;
    f.get("/a", nullptr, &status);
    REQUIRE((status == Status::kCorrupt || status == Status::kOk));  // the worker may already have fixed it
    f.put("/b", "still writable");
    f.volume->wait_for_repairs();
    REQUIRE(f.get("/a") == a);
    REQUIRE(f.get("/b") == "still writable");
    REQUIRE(f.volume->stats().repairs_succeeded == 1);
}

TEST_CASE("A block with no intact copy left: the file stays offline - the failure is logged - it can be deleted") {
    test::Geometry geometry;
    geometry.log_blocks = 16;
    Fixture f(geometry, without_worker());
    const std::string a = pattern(kBlockSize, 4);
    f.put("/a", a);
    for (int i = 0; i < 40; ++i) f.put("/filler", pattern(3 * kBlockSize, 10 + i));  // overwrites every log block
    REQUIRE(f.volume->checkpoint() == Status::kOk);
    damage(f, home_block_of(f, a));
    Status status;
    f.get("/a", nullptr, &status);
    REQUIRE(status == Status::kCorrupt);
    f.volume->repair_now();
    REQUIRE(stat(f, "/a").offline);
    REQUIRE(f.platform.logged("no intact copy"));
    REQUIRE(f.volume->stats().repairs_failed == 1);
    REQUIRE(f.get("/filler") == pattern(3 * kBlockSize, 49));
    Transaction* tx = f.begin();
    REQUIRE(f.volume->remove(tx, "/a") == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("A corrupt registry value goes offline alone and is repaired - its key's other values stay readable") {
    Fixture f({}, without_worker());
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_key(tx, "Software") == Status::kOk);
    const std::string blob = pattern(3000, 7);
    REQUIRE(f.volume->set_value(tx, "Software", "Blob", ValueType::kBinary, blob.data(), blob.size()) == Status::kOk);
    const uint32_t version = 42;
    REQUIRE(f.volume->set_value(tx, "Software", "Version", ValueType::kU32, &version, 4) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.volume->checkpoint() == Status::kOk);
    damage(f, home_block_of(f, blob), 10);
    Status status;
    host::read_value(*f.volume, nullptr, "Software", "Blob", nullptr, &status);
    REQUIRE(status == Status::kCorrupt);
    host::read_value(*f.volume, nullptr, "Software", "Blob", nullptr, &status);
    REQUIRE(status == Status::kOffline);
    REQUIRE(host::read_value(*f.volume, nullptr, "Software", "Version", nullptr, &status) == std::string("\x2a\0\0\0", 4));
    REQUIRE(status == Status::kOk);
    f.volume->repair_now();
    REQUIRE(host::read_value(*f.volume, nullptr, "Software", "Blob", nullptr, &status) == blob);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Inode table: a bad primary copy is replaced by the mirror - a lost inode comes back from the log") {
    Fixture f({}, without_worker());
    f.put("/a", "alpha");
    f.put("/b", "beta");
    REQUIRE(f.volume->checkpoint() == Status::kOk);
    const Superblock s = f.volume->superblock();
    NodeInfo a = stat(f, "/a");
    const uint64_t slot = uint64_t{a.inode % kInodesPerBlock} * sizeof(DiskInode) + 40;
    const uint64_t table_block = s.bitmap_blocks + a.inode / kInodesPerBlock;
    auto& bytes = f.device.bytes();

    SECTION("primary copy damaged: the mirror is used and the primary rewritten") {
        bytes[(s.meta_start + table_block) * kBlockSize + slot] ^= 1;
        f.crash_and_remount(without_worker());
        REQUIRE(f.get("/a") == "alpha");
        REQUIRE(f.platform.logged("using the mirror"));
        REQUIRE(f.fsck_errors() == 0);
    }
    SECTION("both copies damaged: offline, then restored from its newest image in the log") {
        bytes[(s.meta_start + table_block) * kBlockSize + slot] ^= 1;
        bytes[(s.mirror_start + table_block) * kBlockSize + slot] ^= 1;
        f.crash_and_remount(without_worker());
        NodeInfo info;
        REQUIRE(f.volume->stat(nullptr, "/a", &info) == Status::kNotFound);
        REQUIRE(f.get("/b") == "beta");
        f.put("/b", "beta, still writable");
        f.volume->repair_now();
        REQUIRE(f.get("/a") == "alpha");
        REQUIRE(f.platform.logged("restored from the log"));
        REQUIRE(f.fsck_errors() == 0);
    }
}

TEST_CASE("Online fsck runs while writers commit - finds nothing on a healthy volume - and finds planted damage") {
    Fixture f({}, without_worker());
    f.put("/victim", pattern(kBlockSize, 9));
    std::atomic<bool> stop{false};
    std::atomic<int> commits{0};
    std::thread writer([&] {
        for (int i = 0; !stop; ++i) {
            Transaction* tx = nullptr;
            if (f.volume->begin(&tx) != Status::kOk) continue;
            const std::string path = "/w" + std::to_string(i % 5);
            const std::string data = pattern(100 + i % 7000, i);
            Status status = f.volume->create_file(tx, path.c_str());
            if (status != Status::kOk && status != Status::kAlreadyExists) {
                f.volume->rollback(tx);
                continue;
            }
            if (f.volume->truncate_file(tx, path.c_str(), 0) == Status::kOk &&
                f.volume->write_file(tx, path.c_str(), 0, data.data(), data.size()) == Status::kOk && f.volume->commit(tx) == Status::kOk)
                ++commits;
            else
                f.volume->rollback(tx);
        }
    });
    std::string messages;
    // Check until the writer has committed a good number of times meanwhile (bounded).
    for (int round = 0; round < 2000 && (round < 20 || commits < 50); ++round) REQUIRE(f.fsck_errors(&messages) == 0);
    stop = true;
    writer.join();
    REQUIRE(commits >= 50);
    // Plant damage in a file whose newest image is still in the log: found, queued, repaired.
    f.put("/victim", pattern(kBlockSize, 10));
    REQUIRE(f.volume->checkpoint() == Status::kOk);
    damage(f, home_block_of(f, pattern(kBlockSize, 10)));
    REQUIRE(f.fsck_errors(&messages) >= 1);
    REQUIRE(messages.find("checksum mismatch") != std::string::npos);
    f.volume->repair_now();
    const uint32_t errors = f.fsck_errors(&messages);
    INFO(messages);
    REQUIRE(errors == 0);
}
