// Transactions: atomicity, isolation (read committed; a transaction sees its own writes),
// conflicts, rollback, durability across remounts and crashes, group commit, limits.
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "fixture.h"

using namespace txfs;
using txfs::test::Fixture;
using txfs::test::pattern;

TEST_CASE("Commit applies changes to many files atomically and durably") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_directory(tx, "/windows") == Status::kOk);
    for (int i = 0; i < 20; ++i) {
        const std::string path = "/windows/file" + std::to_string(i);
        REQUIRE(f.volume->create_file(tx, path.c_str()) == Status::kOk);
        const std::string data = pattern(1000 + i * 3000, i);
        REQUIRE(f.volume->write_file(tx, path.c_str(), 0, data.data(), data.size()) == Status::kOk);
    }
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    f.crash_and_remount();
    for (int i = 0; i < 20; ++i) REQUIRE(f.get("/windows/file" + std::to_string(i)) == pattern(1000 + i * 3000, i));
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Readers outside a transaction see only committed state - the transaction sees its own writes") {
    Fixture f;
    f.put("/a", "committed");
    Transaction* tx = f.begin();
    REQUIRE(f.volume->write_file(tx, "/a", 0, "CHANGED", 7) == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/new") == Status::kOk);
    REQUIRE(f.get("/a", tx) == "CHANGEDed");
    REQUIRE(f.get("/a") == "committed");
    NodeInfo info;
    REQUIRE(f.volume->stat(tx, "/new", &info) == Status::kOk);
    REQUIRE(f.volume->stat(nullptr, "/new", &info) == Status::kNotFound);
    REQUIRE(host::list_directory(*f.volume, nullptr, "/").size() == 1);
    REQUIRE(host::list_directory(*f.volume, tx, "/").size() == 2);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.get("/a") == "CHANGEDed");
    REQUIRE(f.volume->stat(nullptr, "/new", &info) == Status::kOk);
}

TEST_CASE("A second writer of a held object gets a conflict - at once - and no update is lost") {
    Fixture f;
    f.put("/a", "0");
    Transaction* first = f.begin();
    Transaction* second = f.begin();
    REQUIRE(f.volume->write_file(first, "/a", 0, "1", 1) == Status::kOk);
    REQUIRE(f.volume->write_file(second, "/a", 0, "2", 1) == Status::kConflict);
    REQUIRE(f.volume->remove(second, "/a") == Status::kConflict);
    // Creating in a directory another transaction is changing conflicts too.
    REQUIRE(f.volume->create_file(first, "/b") == Status::kOk);
    REQUIRE(f.volume->create_file(second, "/c") == Status::kConflict);
    f.volume->rollback(second);
    REQUIRE(f.volume->commit(first) == Status::kOk);
    REQUIRE(f.get("/a") == "1");
    REQUIRE(f.volume->stats().conflicts == 3);
    // Once released, the object can be written again.
    Transaction* third = f.begin();
    REQUIRE(f.volume->write_file(third, "/a", 0, "3", 1) == Status::kOk);
    REQUIRE(f.volume->commit(third) == Status::kOk);
    REQUIRE(f.get("/a") == "3");
}

TEST_CASE("Rollback and a crash before commit leave no trace") {
    Fixture f;
    f.put("/keep", "kept");
    const std::string before = host::dump_volume(*f.volume);
    Transaction* tx = f.begin();
    REQUIRE(f.volume->write_file(tx, "/keep", 0, "XXXXXXXX", 8) == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/gone") == Status::kOk);
    REQUIRE(f.volume->create_key(tx, "Gone") == Status::kOk);
    f.volume->rollback(tx);
    REQUIRE(host::dump_volume(*f.volume) == before);

    Transaction* open = f.begin();
    REQUIRE(f.volume->write_file(open, "/keep", 0, "YYYY", 4) == Status::kOk);
    f.volume->rollback(open);  // the transaction object must be released before the "crash"
    f.crash_and_remount();
    REQUIRE(host::dump_volume(*f.volume) == before);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Writes - truncation and holes within one file") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_file(tx, "/f") == Status::kOk);
    const std::string big = pattern(100000, 3);  // past the direct blocks: uses the indirect block
    REQUIRE(f.volume->write_file(tx, "/f", 0, big.data(), big.size()) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(f.get("/f") == big);

    tx = f.begin();
    REQUIRE(f.volume->truncate_file(tx, "/f", 5000) == Status::kOk);
    REQUIRE(f.volume->write_file(tx, "/f", 9000, "tail", 4) == Status::kOk);  // a hole from 5000 to 9000
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    std::string expected = big.substr(0, 5000) + std::string(4000, '\0') + "tail";
    REQUIRE(f.get("/f") == expected);
    f.crash_and_remount();
    REQUIRE(f.get("/f") == expected);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Limits: name length and file size at the exact fit and one past") {
    Fixture f;
    Transaction* tx = f.begin();
    const std::string longest = "/" + std::string(kMaxNameLength, 'n');
    REQUIRE(f.volume->create_file(tx, longest.c_str()) == Status::kOk);
    REQUIRE(f.volume->create_file(tx, (longest + "x").c_str()) == Status::kInvalidArgument);
    REQUIRE(f.volume->create_file(tx, "/") == Status::kInvalidArgument);
    REQUIRE(f.volume->create_file(tx, "relative") == Status::kInvalidArgument);
    REQUIRE(f.volume->create_file(tx, "/a//b") == Status::kInvalidArgument);
    REQUIRE(f.volume->create_file(tx, "/..") == Status::kInvalidArgument);
    REQUIRE(f.volume->write_file(tx, longest.c_str(), kMaxFileSize - 1, "z", 1) == Status::kOk);
    REQUIRE(f.volume->write_file(tx, longest.c_str(), kMaxFileSize, "z", 1) == Status::kTooLarge);
    REQUIRE(f.volume->truncate_file(tx, longest.c_str(), kMaxFileSize + 1) == Status::kTooLarge);
    f.volume->rollback(tx);
}

TEST_CASE("A transaction bigger than the log is refused whole - one that fits is accepted") {
    test::Geometry geometry;
    geometry.log_blocks = 16;
    Fixture f(geometry);
    // Header + op stream: 14 block images (+ op headers, inode, allocations) fit in 15 blocks.
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_file(tx, "/fits") == Status::kOk);
    const std::string fits = pattern(13 * kBlockSize, 1);
    REQUIRE(f.volume->write_file(tx, "/fits", 0, fits.data(), fits.size()) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    tx = f.begin();
    REQUIRE(f.volume->create_file(tx, "/big") == Status::kOk);
    const std::string big = pattern(16 * kBlockSize, 2);
    REQUIRE(f.volume->write_file(tx, "/big", 0, big.data(), big.size()) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kTooLarge);
    NodeInfo info;
    REQUIRE(f.volume->stat(nullptr, "/big", &info) == Status::kNotFound);
    REQUIRE(f.get("/fits") == fits);
    REQUIRE(f.fsck_errors() == 0);
}

TEST_CASE("Running out of blocks fails the commit cleanly") {
    test::Geometry geometry;
    geometry.bytes = 200 * kBlockSize;
    geometry.inodes = 64;
    geometry.log_blocks = 64;
    Fixture f(geometry);
    const std::string chunk = pattern(40 * kBlockSize, 1);
    int committed = 0;
    Status status = Status::kOk;
    while (status == Status::kOk && committed < 10) {
        Transaction* tx = f.begin();
        const std::string path = "/f" + std::to_string(committed);
        REQUIRE(f.volume->create_file(tx, path.c_str()) == Status::kOk);
        REQUIRE(f.volume->write_file(tx, path.c_str(), 0, chunk.data(), chunk.size()) == Status::kOk);
        status = f.volume->commit(tx);
        if (status == Status::kOk) ++committed;
    }
    REQUIRE(status == Status::kNoSpace);
    REQUIRE(committed >= 1);
    REQUIRE(f.fsck_errors() == 0);
    f.crash_and_remount();
    REQUIRE(f.fsck_errors() == 0);
    REQUIRE(host::list_directory(*f.volume, nullptr, "/").size() == static_cast<size_t>(committed));
}

TEST_CASE("The log wraps many times under steady commits - checkpoints keep it bounded") {
    test::Geometry geometry;
    geometry.log_blocks = 16;
    Fixture f(geometry);
    for (int i = 0; i < 200; ++i) f.put("/f" + std::to_string(i % 7), pattern(100 + i * 97 % 9000, i));
    REQUIRE(f.volume->stats().checkpoints > 20);
    REQUIRE(f.volume->log_used_blocks() < 16);
    f.crash_and_remount();
    for (int i = 193; i < 200; ++i) REQUIRE(f.get("/f" + std::to_string(i % 7)) == pattern(100 + i * 97 % 9000, i));
    REQUIRE(f.fsck_errors() == 0);
}

namespace {

// commits and log flushes made by `writers` threads doing `commits` transactions each, each thread
// on its own file, on a device whose flush takes 2 ms.
std::pair<uint64_t, uint64_t> run_writers(Fixture& f, int writers, int commits) {
    for (int w = 0; w < writers; ++w) f.put("/w" + std::to_string(w), "");
    f.device.set_flush_delay_us(2000);
    const VolumeStats before = f.volume->stats();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const std::string path = "/w" + std::to_string(w);
            for (int i = 0; i < commits; ++i) {
                Transaction* tx = nullptr;
                if (f.volume->begin(&tx) != Status::kOk || f.volume->write_file(tx, path.c_str(), 0, "x", 1) != Status::kOk ||
                    f.volume->commit(tx) != Status::kOk)
                    ++failures;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    f.device.set_flush_delay_us(0);
    REQUIRE(failures == 0);
    const VolumeStats after = f.volume->stats();
    return {after.commits - before.commits, after.log_flushes - before.log_flushes};
}

}  // namespace

TEST_CASE("Group commit: one writer flushes once per commit - 16 writers share flushes") {
    Fixture single;
    const auto [commits1, flushes1] = run_writers(single, 1, 20);
    REQUIRE(commits1 == 20);
    REQUIRE(flushes1 == 20);

    Fixture shared;
    const auto [commits16, flushes16] = run_writers(shared, 16, 20);
    INFO("16 writers: " << commits16 << " commits, " << flushes16 << " flushes");
    REQUIRE(commits16 == 16 * 20);
    // While the leader's 2 ms flush runs, the other writers queue their records behind it.
    REQUIRE(flushes16 * 3 <= commits16);
    REQUIRE(shared.fsck_errors() == 0);
}

TEST_CASE("An I/O error fails the commit and stops further writes") {
    Fixture f;
    f.put("/a", "before");
    f.device.fail_from_now(true);
    Transaction* tx = f.begin();
    REQUIRE(f.volume->write_file(tx, "/a", 0, "after!", 6) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kIoError);
    REQUIRE(f.get("/a") == "before");
    tx = f.begin();
    REQUIRE(f.volume->write_file(tx, "/a", 0, "again", 5) == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kIoError);
    f.device.fail_from_now(false);
    f.crash_and_remount();
    REQUIRE(f.get("/a") == "before");
}

TEST_CASE("Directories: remove refuses a non-empty directory and removes an empty one") {
    Fixture f;
    Transaction* tx = f.begin();
    REQUIRE(f.volume->create_directory(tx, "/d") == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/d/x") == Status::kOk);
    REQUIRE(f.volume->create_file(tx, "/d/x") == Status::kAlreadyExists);
    REQUIRE(f.volume->create_directory(tx, "/d/x/y") == Status::kNotFound);
    REQUIRE(f.volume->write_file(tx, "/d", 0, "no", 2) == Status::kWrongType);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    tx = f.begin();
    REQUIRE(f.volume->remove(tx, "/d") == Status::kNotEmpty);
    REQUIRE(f.volume->remove(tx, "/d/x") == Status::kOk);
    REQUIRE(f.volume->remove(tx, "/d") == Status::kOk);
    REQUIRE(f.volume->commit(tx) == Status::kOk);
    REQUIRE(host::dump_volume(*f.volume).empty());
    f.remount();
    REQUIRE(host::dump_volume(*f.volume).empty());
    REQUIRE(f.fsck_errors() == 0);
}
