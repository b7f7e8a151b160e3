// txfs in the guest: the core (txfs/core) on a RAM disk through the guest's BlockDevice and
// Platform (fs/txfs). Transactions with files and registry keys, commit, rollback and replay after
// a power cut; read-committed isolation and conflicts between two kernel threads; group commit
// across vCPUs; a corrupt block taking one file offline and the repair worker fixing it; and the
// adapters' own limits (device range, bounce buffers, errors, log rate limit).
#include <new>

#include "core/volume.h"
#include "drivers/ram_disk.h"
#include "fs/txfs/guest_volume.h"
#include "fs/txfs/update.h"
#include "kernel/console.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "kernel/smp/smp.h"
#include "kernel/test/ktest.h"
#include "lib/string.h"
#include "tests/storage_test_support.h"
#include "tests/test_threads.h"

namespace hvkvm::guest {
namespace {

using txfs::Status;

constexpr uint64_t kDiskSectors = 16384;  // 8 MiB
constexpr uint32_t kBlockSectors = txfs::kBlockSize / block::kSectorSize;

// A formatted, mounted volume on a fresh RAM disk; everything goes with the object.
class RamVolume {
public:
    explicit RamVolume(const ram_disk::Options& disk_options = ram_options(), bool repair_worker = true) {
        disk_ = ram_disk::create(disk_options);
        if (!disk_) return;
        volume_ = new (std::nothrow) fs::GuestVolume(ram_disk::device(*disk_));
        if (!volume_) return;
        txfs::FormatOptions format;
        format.inode_count = 256;
        format.log_blocks = 256;
        options_.repair_worker = repair_worker;
        if (volume_->format(format) == Status::kOk) volume_->mount(options_);
    }
    ~RamVolume() {
        delete volume_;  // unmounts
        if (disk_) ram_disk::destroy(disk_);
    }
    RamVolume(const RamVolume&) = delete;
    RamVolume& operator=(const RamVolume&) = delete;

    static ram_disk::Options ram_options() {
        ram_disk::Options options;
        options.name = "txfs-ram";
        options.sectors = kDiskSectors;
        return options;
    }

    bool ok() const { return volume_ && volume_->mounted(); }
    txfs::Volume& operator*() { return volume_->volume(); }
    txfs::Volume* operator->() { return &volume_->volume(); }
    fs::GuestVolume& guest() { return *volume_; }
    ram_disk::RamDisk& disk() { return *disk_; }
    // Unmounted cleanly (or by a power cut), then mounted again with the same options.
    Status remount(bool power_cut) {
        if (power_cut) volume_->power_cut();
        else if (Status status = volume_->unmount(); status != Status::kOk) return status;
        return volume_->mount(options_);
    }

private:
    ram_disk::RamDisk* disk_ = nullptr;
    fs::GuestVolume* volume_ = nullptr;
    txfs::MountOptions options_;
};

// The bytes of a file (up to `capacity`), or the status that stopped the read.
struct FileBytes {
    Status status;
    size_t length;
    char data[64];
};
FileBytes read_text(txfs::Volume& volume, txfs::Transaction* tx, const char* path) {
    FileBytes file{};
    file.status = volume.read_file(tx, path, 0, file.data, sizeof(file.data) - 1, &file.length);
    file.data[file.status == Status::kOk ? file.length : 0] = '\0';
    return file;
}
bool holds(txfs::Volume& volume, txfs::Transaction* tx, const char* path, const char* text) {
    const FileBytes file = read_text(volume, tx, path);
    return file.status == Status::kOk && file.length == strlen(text) && memcmp(file.data, text, file.length) == 0;
}
Status put(txfs::Volume& volume, txfs::Transaction* tx, const char* path, const char* text) {
    Status status = volume.create_file(tx, path);
    if (status != Status::kOk && status != Status::kAlreadyExists) return status;
    if ((status = volume.truncate_file(tx, path, 0)) != Status::kOk) return status;
    return volume.write_file(tx, path, 0, text, strlen(text));
}
// Commits a one-file transaction.
Status commit_file(txfs::Volume& volume, const char* path, const char* text) {
    txfs::Transaction* tx = nullptr;
    if (Status status = volume.begin(&tx); status != Status::kOk) return status;
    if (Status status = put(volume, tx, path, text); status != Status::kOk) {
        volume.rollback(tx);
        return status;
    }
    return volume.commit(tx);
}
uint32_t read_u32(txfs::Volume& volume, txfs::Transaction* tx, const char* key, const char* name, Status* status) {
    uint32_t value = 0;
    size_t length = sizeof(value);
    txfs::ValueType type;
    *status = volume.get_value(tx, key, name, &type, &value, &length);
    return value;
}

KTEST(txfs, files_and_keys_commit_rollback_and_replay_after_a_power_cut) {
    RamVolume volume;
    KASSERT(volume.ok());
    txfs::Transaction* tx = nullptr;
    KASSERT(volume->begin(&tx) == Status::kOk);
    KEXPECT(volume->create_directory(tx, "/d") == Status::kOk);
    KEXPECT(put(*volume, tx, "/d/a", "hello") == Status::kOk);
    KEXPECT(volume->create_key(tx, "S") == Status::kOk);
    const uint32_t seven = 7;
    KEXPECT(volume->set_value(tx, "S", "v", txfs::ValueType::kU32, &seven, 4) == Status::kOk);
    // The transaction sees its own writes; nobody else does before commit.
    KEXPECT(holds(*volume, tx, "/d/a", "hello"));
    KEXPECT(read_text(*volume, nullptr, "/d/a").status == Status::kNotFound);
    Status status;
    KEXPECT(read_u32(*volume, nullptr, "S", "v", &status) == 0 && status == Status::kNotFound);
    KASSERT(volume->commit(tx) == Status::kOk);
    KEXPECT(holds(*volume, nullptr, "/d/a", "hello"));
    KEXPECT_EQ(read_u32(*volume, nullptr, "S", "v", &status), 7u);

    // Rolled back: no trace, in memory or after a remount.
    KASSERT(volume->begin(&tx) == Status::kOk);
    KEXPECT(put(*volume, tx, "/d/a", "bye") == Status::kOk);
    KEXPECT(put(*volume, tx, "/d/b", "never") == Status::kOk);
    const uint32_t nine = 9;
    KEXPECT(volume->set_value(tx, "S", "v", txfs::ValueType::kU32, &nine, 4) == Status::kOk);
    volume->rollback(tx);
    KEXPECT(holds(*volume, nullptr, "/d/a", "hello"));
    KEXPECT(read_text(*volume, nullptr, "/d/b").status == Status::kNotFound);
    KEXPECT_EQ(read_u32(*volume, nullptr, "S", "v", &status), 7u);
    KEXPECT_EQ(volume->stats().rollbacks, 1u);

    // A commit, then the power goes: mount replays the log and finds it; a clean remount replays nothing.
    KEXPECT(commit_file(*volume, "/d/c", "durable") == Status::kOk);
    KASSERT(volume.remount(true) == Status::kOk);
    KEXPECT(volume->stats().records_replayed >= 2);
    KEXPECT(holds(*volume, nullptr, "/d/c", "durable"));
    KEXPECT(holds(*volume, nullptr, "/d/a", "hello"));
    KEXPECT(read_text(*volume, nullptr, "/d/b").status == Status::kNotFound);
    KEXPECT_EQ(read_u32(*volume, nullptr, "S", "v", &status), 7u);
    KASSERT(volume.remount(false) == Status::kOk);
    KEXPECT_EQ(volume->stats().records_replayed, 0u);
    KEXPECT(holds(*volume, nullptr, "/d/c", "durable"));
    txfs::CheckSummary summary;
    KEXPECT(volume->check(nullptr, nullptr, &summary) == Status::kOk);
    KEXPECT_EQ(summary.errors, 0u);
    // Every buffer the core handed the disk was one the block layer takes as it is.
    KEXPECT_EQ(volume.guest().disk().stats().bounced, 0u);
    KEXPECT(volume.guest().disk().stats().flushes >= 3);  // one per commit at least
}

// Two kernel threads: the writer holds /f uncommitted while the reader checks what it can see and
// that its own write of /f conflicts; then the writer commits and the reader sees it.
struct IsolationTest {
    txfs::Volume* volume = nullptr;
    Event written;
    Event reader_done_checking;
    Event committed;
    Status writer_commit = Status::kIoError;
    bool reader_saw_old = false;
    Status reader_write = Status::kOk;
    bool reader_saw_new = false;
    Status reader_later_commit = Status::kIoError;
};

void isolation_writer(void* argument) {
    auto& test = *static_cast<IsolationTest*>(argument);
    txfs::Transaction* tx = nullptr;
    if (test.volume->begin(&tx) == Status::kOk) {
        put(*test.volume, tx, "/f", "v2");
        test.written.set();
        test.reader_done_checking.wait();
        test.writer_commit = test.volume->commit(tx);
    } else {
        test.written.set();
    }
    test.committed.set();
}

void isolation_reader(void* argument) {
    auto& test = *static_cast<IsolationTest*>(argument);
    test.written.wait();
    test.reader_saw_old = holds(*test.volume, nullptr, "/f", "v1");
    txfs::Transaction* tx = nullptr;
    if (test.volume->begin(&tx) == Status::kOk) {
        test.reader_write = test.volume->write_file(tx, "/f", 0, "v3", 2);
        test.volume->rollback(tx);
    }
    test.reader_done_checking.set();
    test.committed.wait();
    test.reader_saw_new = holds(*test.volume, nullptr, "/f", "v2");
    test.reader_later_commit = commit_file(*test.volume, "/f", "v3");
}

KTEST(txfs, read_committed_isolation_and_conflict_between_two_threads) {
    RamVolume volume;
    KASSERT(volume.ok());
    KASSERT(commit_file(*volume, "/f", "v1") == Status::kOk);
    IsolationTest test;
    test.volume = &*volume;
    sched::ThreadOptions options;
    options.name = "txfs-writer";
    options.ideal_cpu = test::nth_online_cpu(0);
    sched::Thread* writer = sched::create_thread(isolation_writer, &test, options);
    options.name = "txfs-reader";
    options.ideal_cpu = test::nth_online_cpu(1);
    sched::Thread* reader = sched::create_thread(isolation_reader, &test, options);
    KASSERT(writer && reader);
    sched::join(writer);
    sched::join(reader);
    KEXPECT(test.reader_saw_old);                          // uncommitted writes are invisible
    KEXPECT(test.reader_write == Status::kConflict);       // first writer wins, nobody waits
    KEXPECT(test.writer_commit == Status::kOk);
    KEXPECT(test.reader_saw_new);                          // committed writes are visible
    KEXPECT(test.reader_later_commit == Status::kOk);      // the lock went with the commit
    KEXPECT(holds(*volume, nullptr, "/f", "v3"));
    KEXPECT_EQ(volume->stats().conflicts, 1u);
}

// Group commit: writers on every vCPU commit at once on a disk whose commands take a while, so
// committers arriving during a flush share the next one.
constexpr uint32_t kGroupWriters = 4;
constexpr uint32_t kCommitsPerWriter = 8;

struct GroupCommitTest {
    txfs::Volume* volume;
    uint32_t failures = 0;  // atomic
};

void writer_path(uint32_t index, char (&path)[4]) {
    path[0] = '/', path[1] = 'w', path[2] = static_cast<char>('0' + index), path[3] = '\0';
}

// Rewrites the writer's own file (created beforehand: creating entries in one directory from two
// transactions at once would conflict on the directory).
Status rewrite(txfs::Volume& volume, const char* path, uint32_t round) {
    txfs::Transaction* tx = nullptr;
    if (Status status = volume.begin(&tx); status != Status::kOk) return status;
    const char text[2] = {static_cast<char>('0' + round), '\n'};
    if (Status status = volume.write_file(tx, path, 0, text, 2); status != Status::kOk) {
        volume.rollback(tx);
        return status;
    }
    return volume.commit(tx);
}

void group_commit_writer(void* context, uint32_t index) {
    auto& test = *static_cast<GroupCommitTest*>(context);
    char path[4];
    writer_path(index, path);
    for (uint32_t i = 0; i < kCommitsPerWriter; ++i)
        if (rewrite(*test.volume, path, i) != Status::kOk) __atomic_add_fetch(&test.failures, 1, __ATOMIC_RELAXED);
}

KTEST(txfs, group_commit_shares_flushes_between_writers_on_several_vcpus) {
    KSKIP_UNLESS(smp::online_count() >= 2, "group commit across vCPUs needs 2 vCPUs");
    ram_disk::Options disk = RamVolume::ram_options();
    disk.completion = ram_disk::Completion::kTimed;
    disk.latency_ns = 2'000'000;  // every command, flushes included, takes 2 ms
    disk.limits.queue_depth = 8;
    RamVolume volume(disk);
    KASSERT(volume.ok());
    txfs::Transaction* tx = nullptr;
    KASSERT(volume->begin(&tx) == Status::kOk);
    for (uint32_t i = 0; i < kGroupWriters; ++i) {
        char path[4];
        writer_path(i, path);
        KEXPECT(volume->create_file(tx, path) == Status::kOk);
    }
    KASSERT(volume->commit(tx) == Status::kOk);
    const txfs::VolumeStats before = volume->stats();
    const uint64_t flushes_before = volume.guest().disk().stats().flushes;
    GroupCommitTest test{&*volume};
    KASSERT(test::run_in_threads(kGroupWriters, test::Placement::kOnePerCpu, group_commit_writer, &test));
    const txfs::VolumeStats after = volume->stats();
    const uint64_t commits = after.commits - before.commits;
    const uint64_t log_flushes = after.log_flushes - before.log_flushes;
    const uint64_t device_flushes = volume.guest().disk().stats().flushes - flushes_before;
    kprint("txfs group commit: %lu commits by %u writers on %u vCPUs: %lu log flushes (%lu.%02lu per commit), %lu "
           "device flushes\n",
           commits, kGroupWriters, smp::online_count(), log_flushes, log_flushes / commits,
           log_flushes * 100 / commits % 100, device_flushes);
    KEXPECT_EQ(test.failures, 0u);
    KEXPECT_EQ(commits, uint64_t{kGroupWriters} * kCommitsPerWriter);
    KEXPECT(log_flushes < commits);  // shared: without group commit every commit flushes
    KEXPECT(log_flushes >= 1);
    KEXPECT(device_flushes >= log_flushes);  // checkpoints flush too, and nothing flushes behind the volume's back
}

// The data region's block whose first bytes are `pattern`'s (the test files' blocks are unique).
uint32_t home_block_of(RamVolume& volume, const uint8_t* pattern) {
    const txfs::Superblock& superblock = volume->superblock();
    for (uint64_t block = superblock.data_start; block < superblock.block_count; ++block)
        if (memcmp(ram_disk::sector_data(volume.disk(), block * kBlockSectors), pattern, 64) == 0)
            return static_cast<uint32_t>(block);
    return 0;
}

// Two files of distinct patterns (two blocks each), written home by a checkpoint.
struct TwoFiles {
    test::HeapBuffer a{2 * txfs::kBlockSize};
    test::HeapBuffer b{2 * txfs::kBlockSize};
    test::HeapBuffer readback{2 * txfs::kBlockSize};
    bool ok() const { return a.ok() && b.ok() && readback.ok(); }
};

Status write_two_files(RamVolume& volume, TwoFiles& files) {
    test::fill_pattern(files.a.data(), 0, 2 * kBlockSectors, 0x7a);
    test::fill_pattern(files.b.data(), 0, 2 * kBlockSectors, 0x7b);
    txfs::Transaction* tx = nullptr;
    Status status = volume->begin(&tx);
    if (status != Status::kOk) return status;
    const char* const paths[] = {"/a", "/b"};
    for (const char* path : paths) {
        const uint8_t* data = path[1] == 'a' ? files.a.data() : files.b.data();
        if ((status = volume->create_file(tx, path)) != Status::kOk ||
            (status = volume->write_file(tx, path, 0, data, 2 * txfs::kBlockSize)) != Status::kOk) {
            volume->rollback(tx);
            return status;
        }
    }
    if ((status = volume->commit(tx)) != Status::kOk) return status;
    return volume->checkpoint();  // home now; the records stay in the log area for repairs
}

bool reads_back(RamVolume& volume, const char* path, const uint8_t* expected, uint8_t* buffer) {
    size_t read = 0;
    return volume->read_file(nullptr, path, 0, buffer, 2 * txfs::kBlockSize, &read) == Status::kOk &&
           read == 2 * txfs::kBlockSize && memcmp(buffer, expected, read) == 0;
}

KTEST(txfs, corrupt_block_takes_only_its_file_offline) {
    RamVolume volume(RamVolume::ram_options(), false);  // no worker: the offline state stays to be seen
    TwoFiles files;
    KASSERT(volume.ok() && files.ok());
    KASSERT(write_two_files(volume, files) == Status::kOk);
    const uint32_t block = home_block_of(volume, files.a.data() + txfs::kBlockSize);
    KASSERT(block != 0);
    ram_disk::sector_data(volume.disk(), uint64_t{block} * kBlockSectors)[100] ^= 0x5a;

    size_t read = 0;
    KEXPECT(volume->read_file(nullptr, "/a", 0, files.readback.data(), 2 * txfs::kBlockSize, &read) == Status::kCorrupt);
    txfs::NodeInfo info{};
    KEXPECT(volume->stat(nullptr, "/a", &info) == Status::kOk && info.offline);
    KEXPECT(volume->read_file(nullptr, "/a", 0, files.readback.data(), 16, &read) == Status::kOffline);
    // The rest of the volume: readable, writable, committable.
    KEXPECT(reads_back(volume, "/b", files.b.data(), files.readback.data()));
    KEXPECT(commit_file(*volume, "/b", "rewritten") == Status::kOk);
    KEXPECT(commit_file(*volume, "/c", "new") == Status::kOk);
    KEXPECT(holds(*volume, nullptr, "/b", "rewritten"));
    txfs::CheckSummary summary;
    KEXPECT(volume->check(nullptr, nullptr, &summary) == Status::kOk);
    KEXPECT(summary.offline_objects == 1 && summary.errors >= 1);  // fsck names the offline file

    volume->repair_now();
    KEXPECT(reads_back(volume, "/a", files.a.data(), files.readback.data()));
    KEXPECT_EQ(volume->stats().repairs_succeeded, 1u);
}

KTEST(txfs, repair_worker_restores_a_corrupt_file_while_the_volume_is_in_use) {
    RamVolume volume;  // with the repair worker (a kernel thread)
    TwoFiles files;
    KASSERT(volume.ok() && files.ok());
    KASSERT(write_two_files(volume, files) == Status::kOk);
    const uint32_t block = home_block_of(volume, files.a.data());
    KASSERT(block != 0);
    ram_disk::sector_data(volume.disk(), uint64_t{block} * kBlockSectors)[100] ^= 0x5a;

    size_t read = 0;
    const Status first = volume->read_file(nullptr, "/a", 0, files.readback.data(), 2 * txfs::kBlockSize, &read);
    KEXPECT(first == Status::kCorrupt || first == Status::kOk);  // the worker may have repaired it already
    KEXPECT(commit_file(*volume, "/b", "still writable") == Status::kOk);
    volume->wait_for_repairs();
    KEXPECT(reads_back(volume, "/a", files.a.data(), files.readback.data()));
    KEXPECT(holds(*volume, nullptr, "/b", "still writable"));
    const txfs::VolumeStats stats = volume->stats();
    KEXPECT_EQ(stats.corruptions_detected, 1u);
    KEXPECT_EQ(stats.repairs_succeeded, 1u);  // by the worker: nothing here called repair_now()
    KEXPECT_EQ(stats.repairs_failed, 0u);
    // The repaired block is on the disk again.
    KEXPECT(memcmp(ram_disk::sector_data(volume.disk(), uint64_t{block} * kBlockSectors), files.a.data(), 512) == 0);
}

KTEST(txfs, update_installs_whole_versions) {
    RamVolume volume;
    KASSERT(volume.ok());
    fs::InstalledUpdate installed;
    KASSERT(fs::read_installed_update(volume.guest(), &installed) == Status::kOk);
    KEXPECT(!installed.present && installed.consistent);
    fs::UpdateResult result;
    KASSERT(fs::install_update(volume.guest(), 1, {}, &result) == Status::kOk);
    KASSERT(fs::install_update(volume.guest(), 2, {}, &result) == Status::kOk);
    KEXPECT(result.device_flushes >= 1);
    KASSERT(volume.remount(true) == Status::kOk);
    KASSERT(fs::read_installed_update(volume.guest(), &installed) == Status::kOk);
    KEXPECT(installed.present && installed.consistent);
    KEXPECT_EQ(installed.version, 2u);
    // The check notices a component of another version.
    KASSERT(commit_file(*volume, "/Windows/System32/hvvideo.dll", "hvkvm update version=1 component=hvvideo\n") ==
            Status::kOk);
    KASSERT(fs::read_installed_update(volume.guest(), &installed) == Status::kOk);
    KEXPECT(!installed.consistent);
}

KTEST(txfs, disk_device_limits_bounces_and_errors) {
    ram_disk::Options options = RamVolume::ram_options();
    options.sectors = 64;
    options.failing_sector = 40;
    ram_disk::RamDisk* disk = ram_disk::create(options);
    KASSERT(disk);
    fs::DiskDevice device(ram_disk::device(*disk));
    test::HeapBuffer buffer(2 * 4096);
    KASSERT(buffer.ok());
    const uint64_t size = 64 * 512;
    KEXPECT_EQ(device.size_bytes(), size);
    KEXPECT(device.read(size - 512, buffer.data(), 512) == Status::kOk);              // the exact fit
    KEXPECT(device.read(size, buffer.data(), 512) == Status::kInvalidArgument);       // one sector past
    KEXPECT(device.read(size - 512, buffer.data(), 1024) == Status::kInvalidArgument);
    KEXPECT(device.read(100, buffer.data(), 512) == Status::kInvalidArgument);        // not a sector multiple
    KEXPECT(device.read(0, buffer.data(), 0) == Status::kInvalidArgument);
    KEXPECT_EQ(device.stats().bounced, 0u);
    // A buffer the block layer refuses (not sector-aligned) goes through a bounce buffer, both ways.
    memset(buffer.data(), 0x3c, 1024);
    KEXPECT(device.write(512, buffer.data() + 8, 512, txfs::WriteMode::kNormal) == Status::kOk);
    KEXPECT(ram_disk::sector_data(*disk, 1)[0] == 0x3c && ram_disk::sector_data(*disk, 1)[511] == 0x3c);
    ram_disk::sector_data(*disk, 2)[0] = 0x77;
    KEXPECT(device.read(1024, buffer.data() + 8, 512) == Status::kOk);
    KEXPECT_EQ(buffer.data()[8], 0x77);
    KEXPECT_EQ(device.stats().bounced, 2u);
    // FUA is a write plus a flush; a device error is kIoError with the driver's detail kept.
    const uint64_t flushes = device.stats().flushes;
    KEXPECT(device.write(0, buffer.data(), 512, txfs::WriteMode::kFua) == Status::kOk);
    KEXPECT_EQ(device.stats().flushes, flushes + 1);
    KEXPECT(device.read(40 * 512, buffer.data(), 512) == Status::kIoError);
    KEXPECT(device.write(39 * 512, buffer.data(), 1024, txfs::WriteMode::kNormal) == Status::kIoError);
    KEXPECT_EQ(device.stats().errors, 2u);
    KEXPECT_EQ(device.stats().last_device_error, ram_disk::kDeviceErrorDetail);
    ram_disk::destroy(disk);
}

KTEST(txfs, platform_log_is_rate_limited_and_memory_accounted) {
    fs::KernelPlatform platform(3, ~0ull >> 1);  // 3 lines, then a window that never ends
    for (int i = 0; i < 5; ++i) platform.log(txfs::LogLevel::kInfo, "rate limit test line");
    KEXPECT_EQ(platform.stats().log_lines, 3u);
    KEXPECT_EQ(platform.stats().log_lines_dropped, 2u);
    void* memory = platform.allocate(4096);
    KASSERT(memory);
    KEXPECT_EQ(reinterpret_cast<uintptr_t>(memory) % 512, 0u);  // block buffers never bounce
    KEXPECT_EQ(platform.stats().live_allocations, 1u);
    platform.release(memory, 4096);
    KEXPECT_EQ(platform.stats().live_allocations, 0u);
}

}  // namespace
}  // namespace hvkvm::guest
