// txfs-bench: txfs transactions beside SQLite doing the same transactions on the same disk.
//
// One transaction = overwrite one 4 KiB block in each of two files + set one u64 registry value
// (SQLite: upsert two 4 KiB blobs and one integer row, WAL mode, synchronous=FULL), each writer on
// its own objects. For 1, 4 and 16 concurrent writers it reports transactions/s and flushes per
// transaction (txfs: device flushes; SQLite: xSync calls, counted by a pass-through VFS). Then the
// txfs recovery time against the amount of log to replay (page cache for the image dropped first).
//
//   build/bin/txfs-bench [--dir DIR] [--transactions N] [--rounds R]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sqlite3.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/volume.h"
#include "host/file_device.h"
#include "host/host_platform.h"

namespace {

using namespace txfs;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Figures {
    double transactions_per_second = 0;
    double flushes_per_transaction = 0;
};

// ---- txfs ----

Figures run_txfs(const std::string& dir, int writers, int transactions) {
    const std::string path = dir + "/txfs-bench.img";
    std::string error;
    auto device = host::FileDevice::create(path, 256ull << 20, &error);
    if (!device) {
        std::fprintf(stderr, "txfs-bench: %s\n", error.c_str());
        std::exit(1);
    }
    host::HostPlatform platform;
    FormatOptions format;
    format.inode_count = 1024;
    format.log_blocks = 4096;
    format.volume_id = 0xbe7c4;
    if (Volume::format(*device, platform, format) != Status::kOk) std::exit(1);
    Volume* volume = nullptr;
    if (Volume::mount(*device, platform, MountOptions{}, &volume) != Status::kOk) std::exit(1);
    const std::string block(kBlockSize, 'b');
    for (int w = 0; w < writers; ++w) {  // each writer's two files and key, with 16 blocks each
        Transaction* tx = nullptr;
        volume->begin(&tx);
        const std::string dirname = "/w" + std::to_string(w), key = "W" + std::to_string(w);
        volume->create_directory(tx, dirname.c_str());
        for (const char* name : {"/a", "/b"}) {
            const std::string file = dirname + name;
            volume->create_file(tx, file.c_str());
            for (int i = 0; i < 16; ++i) volume->write_file(tx, file.c_str(), uint64_t(i) * kBlockSize, block.data(), block.size());
        }
        volume->create_key(tx, key.c_str());
        if (volume->commit(tx) != Status::kOk) std::exit(1);
    }
    const uint64_t flushes_before = device->flushes();
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            const std::string a = "/w" + std::to_string(w) + "/a", b = "/w" + std::to_string(w) + "/b", key = "W" + std::to_string(w);
            std::string data(kBlockSize, static_cast<char>('a' + w));
            for (uint64_t i = 0; i < uint64_t(transactions / writers); ++i) {
                Transaction* tx = nullptr;
                volume->begin(&tx);
                const uint64_t offset = (i % 16) * kBlockSize;
                std::memcpy(data.data(), &i, sizeof(i));
                const bool ok = volume->write_file(tx, a.c_str(), offset, data.data(), data.size()) == Status::kOk &&
                                volume->write_file(tx, b.c_str(), offset, data.data(), data.size()) == Status::kOk &&
                                volume->set_value(tx, key.c_str(), "counter", ValueType::kU64, &i, 8) == Status::kOk;
                if (!ok) {
                    volume->rollback(tx);
                    ++failures;
                } else if (volume->commit(tx) != Status::kOk) {
                    ++failures;
                }
            }
        });
    }
    for (auto& thread : threads) thread.join();
    const double elapsed = seconds_since(start);
    const int done = transactions / writers * writers;
    Figures figures{done / elapsed, double(device->flushes() - flushes_before) / done};
    volume->unmount();
    ::unlink(path.c_str());
    if (failures) std::fprintf(stderr, "txfs-bench: %d txfs transactions failed\n", failures.load());
    return figures;
}

// ---- SQLite, with a pass-through VFS that counts xSync ----

std::atomic<uint64_t> g_sqlite_syncs{0};  // the VFS callbacks have no user pointer for this
sqlite3_vfs* g_default_vfs = nullptr;

struct CountingFile {
    sqlite3_file base;  // must be first: SQLite sees this
    const sqlite3_io_methods* real_methods;
    // the real file follows (szOsFile bytes of the default VFS)
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

#define FORWARD(name, ...) reinterpret_cast<CountingFile*>(file)->real()->pMethods->name(reinterpret_cast<CountingFile*>(file)->real(), ##__VA_ARGS__)
int counting_close(sqlite3_file* file) { return FORWARD(xClose); }
int counting_read(sqlite3_file* file, void* b, int n, sqlite3_int64 o) { return FORWARD(xRead, b, n, o); }
int counting_write(sqlite3_file* file, const void* b, int n, sqlite3_int64 o) { return FORWARD(xWrite, b, n, o); }
int counting_truncate(sqlite3_file* file, sqlite3_int64 size) { return FORWARD(xTruncate, size); }
int counting_sync(sqlite3_file* file, int flags) {
    ++g_sqlite_syncs;
    return FORWARD(xSync, flags);
}
int counting_size(sqlite3_file* file, sqlite3_int64* size) { return FORWARD(xFileSize, size); }
int counting_lock(sqlite3_file* file, int level) { return FORWARD(xLock, level); }
int counting_unlock(sqlite3_file* file, int level) { return FORWARD(xUnlock, level); }
int counting_reserved(sqlite3_file* file, int* out) { return FORWARD(xCheckReservedLock, out); }
int counting_control(sqlite3_file* file, int op, void* arg) { return FORWARD(xFileControl, op, arg); }
int counting_sector(sqlite3_file* file) { return FORWARD(xSectorSize); }
int counting_characteristics(sqlite3_file* file) { return FORWARD(xDeviceCharacteristics); }
int counting_shm_map(sqlite3_file* file, int page, int size, int extend, void volatile** out) { return FORWARD(xShmMap, page, size, extend, out); }
int counting_shm_lock(sqlite3_file* file, int offset, int n, int flags) { return FORWARD(xShmLock, offset, n, flags); }
void counting_shm_barrier(sqlite3_file* file) { FORWARD(xShmBarrier); }
int counting_shm_unmap(sqlite3_file* file, int remove) { return FORWARD(xShmUnmap, remove); }
#undef FORWARD

const sqlite3_io_methods kCountingMethods = {
    2, counting_close, counting_read, counting_write, counting_truncate, counting_sync, counting_size, counting_lock,
    counting_unlock, counting_reserved, counting_control, counting_sector, counting_characteristics, counting_shm_map,
    counting_shm_lock, counting_shm_barrier, counting_shm_unmap, nullptr, nullptr};

int counting_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags, int* out_flags) {
    auto* counting = reinterpret_cast<CountingFile*>(file);
    const int status = g_default_vfs->xOpen(g_default_vfs, name, counting->real(), flags, out_flags);
    counting->base.pMethods = status == SQLITE_OK && counting->real()->pMethods ? &kCountingMethods : nullptr;
    return status;
}

void register_counting_vfs() {
    static sqlite3_vfs vfs;
    g_default_vfs = sqlite3_vfs_find(nullptr);
    vfs = *g_default_vfs;
    vfs.zName = "counting";
    vfs.szOsFile = static_cast<int>(sizeof(CountingFile)) + g_default_vfs->szOsFile;
    vfs.xOpen = counting_open;
    sqlite3_vfs_register(&vfs, 0);
}

void exec(sqlite3* db, const char* sql) {
    char* error = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
        std::fprintf(stderr, "sqlite: %s: %s\n", sql, error ? error : "?");
        std::exit(1);
    }
}

sqlite3* open_sqlite(const std::string& path) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, "counting") != SQLITE_OK) {
        std::fprintf(stderr, "sqlite: cannot open %s\n", path.c_str());
        std::exit(1);
    }
    sqlite3_busy_timeout(db, 60000);
    exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    return db;
}

Figures run_sqlite(const std::string& dir, int writers, int transactions) {
    const std::string path = dir + "/txfs-bench.sqlite";
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
    sqlite3* setup = open_sqlite(path);
    exec(setup, "CREATE TABLE blocks(writer INT, file INT, block INT, data BLOB, PRIMARY KEY(writer, file, block));"
                "CREATE TABLE registry(key TEXT, name TEXT, value INT, PRIMARY KEY(key, name));");
    const std::string zero(kBlockSize, 'b');
    exec(setup, "BEGIN");
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(setup, "INSERT INTO blocks VALUES(?,?,?,?)", -1, &insert, nullptr);
    for (int w = 0; w < writers; ++w)
        for (int file = 0; file < 2; ++file)
            for (int block = 0; block < 16; ++block) {
                sqlite3_bind_int(insert, 1, w);
                sqlite3_bind_int(insert, 2, file);
                sqlite3_bind_int(insert, 3, block);
                sqlite3_bind_blob(insert, 4, zero.data(), static_cast<int>(zero.size()), SQLITE_STATIC);
                sqlite3_step(insert);
                sqlite3_reset(insert);
            }
    sqlite3_finalize(insert);
    exec(setup, "COMMIT");
    const uint64_t syncs_before = g_sqlite_syncs.load();
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w) {
        threads.emplace_back([&, w] {
            sqlite3* db = open_sqlite(path);
            sqlite3_stmt* update = nullptr;
            sqlite3_stmt* set = nullptr;
            sqlite3_prepare_v2(db, "UPDATE blocks SET data=? WHERE writer=? AND file=? AND block=?", -1, &update, nullptr);
            sqlite3_prepare_v2(db, "INSERT INTO registry VALUES(?, 'counter', ?) ON CONFLICT DO UPDATE SET value=excluded.value", -1, &set, nullptr);
            const std::string key = "W" + std::to_string(w);
            std::string data(kBlockSize, static_cast<char>('a' + w));
            for (int64_t i = 0; i < transactions / writers; ++i) {
                std::memcpy(data.data(), &i, sizeof(i));
                exec(db, "BEGIN IMMEDIATE");
                for (int file = 0; file < 2; ++file) {
                    sqlite3_bind_blob(update, 1, data.data(), static_cast<int>(data.size()), SQLITE_STATIC);
                    sqlite3_bind_int(update, 2, w);
                    sqlite3_bind_int(update, 3, file);
                    sqlite3_bind_int64(update, 4, i % 16);
                    sqlite3_step(update);
                    sqlite3_reset(update);
                }
                sqlite3_bind_text(set, 1, key.c_str(), -1, SQLITE_STATIC);
                sqlite3_bind_int64(set, 2, i);
                sqlite3_step(set);
                sqlite3_reset(set);
                exec(db, "COMMIT");
            }
            sqlite3_finalize(update);
            sqlite3_finalize(set);
            sqlite3_close(db);
        });
    }
    for (auto& thread : threads) thread.join();
    const double elapsed = seconds_since(start);
    const int done = transactions / writers * writers;
    sqlite3_close(setup);
    for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
    return Figures{done / elapsed, double(g_sqlite_syncs.load() - syncs_before) / done};
}

// ---- recovery ----

struct Recovery {
    uint64_t log_blocks, records;
    double milliseconds;
};

Recovery measure_recovery(const std::string& dir, uint32_t log_blocks) {
    const std::string path = dir + "/txfs-recovery.img";
    std::string error;
    auto device = host::FileDevice::create(path, (uint64_t(log_blocks) * 2 + 4096) * kBlockSize, &error);
    if (!device) std::exit(1);
    host::HostPlatform platform;
    FormatOptions format;
    format.inode_count = 256;
    format.log_blocks = log_blocks;
    format.volume_id = 0x5ec0;
    Volume::format(*device, platform, format);
    MountOptions options;
    options.checkpoint_percent = 100;  // let the log fill
    options.repair_worker = false;
    Volume* volume = nullptr;
    if (Volume::mount(*device, platform, options, &volume) != Status::kOk) std::exit(1);
    const std::string data(2 * kBlockSize, 'r');
    Transaction* tx = nullptr;
    volume->begin(&tx);
    volume->create_file(tx, "/f");
    volume->commit(tx);
    while (volume->log_used_blocks() + 4 < log_blocks * 9ull / 10) {  // about 90% full
        volume->begin(&tx);
        volume->write_file(tx, "/f", 0, data.data(), data.size());
        volume->commit(tx);
    }
    Volume::destroy(volume);  // power cut: no checkpoint
    device.reset();
    device = host::FileDevice::open(path, false, &error);
    {
        const int fd = ::open(path.c_str(), O_RDONLY);  // drop this file's pages so the replay reads the disk
        ::fdatasync(fd);
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        ::close(fd);
    }
    const auto start = Clock::now();
    if (Volume::mount(*device, platform, options, &volume) != Status::kOk) std::exit(1);
    const double elapsed = seconds_since(start) * 1000;
    Recovery result{log_blocks, volume->stats().records_replayed, elapsed};
    volume->unmount();
    ::unlink(path.c_str());
    return result;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::string dir = ".";
    int transactions = 400, rounds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
        else if (!std::strcmp(argv[i], "--transactions")) transactions = std::max(16, std::atoi(argv[i + 1]));
        else if (!std::strcmp(argv[i], "--rounds")) rounds = std::max(1, std::atoi(argv[i + 1]));
        else {
            std::fprintf(stderr, "usage: txfs-bench [--dir DIR] [--transactions N] [--rounds R]\n");
            return 2;
        }
    }
    register_counting_vfs();
    std::printf("txfs vs SQLite (WAL, synchronous=FULL), files in %s; %d transactions per run, %d rounds (median [min-max])\n",
                dir.c_str(), transactions, rounds);
    std::printf("one transaction: 2 x 4 KiB block overwrites + 1 u64 registry value\n\n");
    std::printf("%-8s | %-30s %-12s | %-30s %-12s | %s\n", "writers", "txfs tx/s", "flushes/tx", "SQLite tx/s", "fsyncs/tx", "txfs/SQLite");
    for (int writers : {1, 4, 16}) {
        std::vector<double> txfs_rate, txfs_flush, sqlite_rate, sqlite_sync, ratio;
        for (int round = 0; round < rounds; ++round) {  // interleaved, so drift hits both alike
            const Figures t = run_txfs(dir, writers, transactions);
            const Figures s = run_sqlite(dir, writers, transactions);
            txfs_rate.push_back(t.transactions_per_second);
            txfs_flush.push_back(t.flushes_per_transaction);
            sqlite_rate.push_back(s.transactions_per_second);
            sqlite_sync.push_back(s.flushes_per_transaction);
            ratio.push_back(t.transactions_per_second / s.transactions_per_second);
        }
        auto range = [](const std::vector<double>& v) {
            char text[64];
            std::snprintf(text, sizeof(text), "%.0f [%.0f-%.0f]", median(v), *std::min_element(v.begin(), v.end()),
                          *std::max_element(v.begin(), v.end()));
            return std::string(text);
        };
        std::printf("%-8d | %-30s %-12.2f | %-30s %-12.2f | %.2fx\n", writers, range(txfs_rate).c_str(), median(txfs_flush),
                    range(sqlite_rate).c_str(), median(sqlite_sync), median(ratio));
        std::fflush(stdout);
    }
    std::printf("\ntxfs recovery (mount after a power cut with the log ~90%% full; image pages dropped from the cache)\n");
    std::printf("%-12s %-10s %-10s\n", "log MiB", "records", "mount ms");
    for (uint32_t log_blocks : {256u, 1024u, 4096u, 16384u}) {
        std::vector<double> times;
        Recovery last{};
        for (int round = 0; round < rounds; ++round) {
            last = measure_recovery(dir, log_blocks);
            times.push_back(last.milliseconds);
        }
        std::printf("%-12.0f %-10llu %.1f [%.1f-%.1f]\n", log_blocks * 4096.0 / (1 << 20), static_cast<unsigned long long>(last.records),
                    median(times), *std::min_element(times.begin(), times.end()), *std::max_element(times.begin(), times.end()));
        std::fflush(stdout);
    }
    return 0;
}
