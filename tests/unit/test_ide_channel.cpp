// The emulated IDE channel's register state machine, without a VM: fake disks, a fake guest RAM
// of two adjacent regions (as two NUMA nodes), a counting interrupt line, and a worker the test
// runs by hand, so every BSY window is observable.
#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "emulated/ide/ide_channel.h"
#include "hvkvm/abi/ata.h"

using namespace hvkvm::devices::ide;
namespace ata = hvkvm::abi::ata;

namespace {

constexpr uint32_t kSector = 512;

class FakeDisk final : public Disk {
public:
    // Only the first 32 MiB hold data (IDENTIFY tests claim larger disks).
    FakeDisk(std::string id, uint64_t sectors, bool read_only = false)
        : id_(std::move(id)), sectors_(sectors), bytes_(std::min<uint64_t>(sectors, 65536) * kSector), read_only_(read_only) {
        for (uint64_t i = 0; i < bytes_.size(); ++i) bytes_[i] = pattern(i);
    }
    static std::byte pattern(uint64_t offset) { return std::byte(static_cast<uint8_t>(offset * 7 + offset / kSector)); }

    const std::string& id() const override { return id_; }
    uint64_t sectors() const override { return sectors_; }
    bool read_only() const override { return read_only_; }
    int read(uint64_t sector, std::span<std::byte> buffer) override {
        ++reads;
        if (during_io) during_io();
        if (read_error) return read_error;
        std::memcpy(buffer.data(), bytes_.data() + sector * kSector, buffer.size());
        return 0;
    }
    int write(uint64_t sector, std::span<const std::byte> buffer, WriteMode mode) override {
        ++writes;
        last_write_mode = mode;
        if (during_io) during_io();
        if (write_error) return write_error;
        std::memcpy(bytes_.data() + sector * kSector, buffer.data(), buffer.size());
        return 0;
    }
    int flush() override {
        ++flushes;
        return flush_error;
    }
    std::byte at(uint64_t offset) const { return bytes_[offset]; }

    int read_error = 0, write_error = 0, flush_error = 0;
    int reads = 0, writes = 0, flushes = 0;
    WriteMode last_write_mode = WriteMode::kCached;
    std::function<void()> during_io;  // runs on the "worker", between taking a job and finishing it

private:
    std::string id_;
    uint64_t sectors_;
    std::vector<std::byte> bytes_;
    bool read_only_;
};

// 2 MiB of guest RAM as two adjacent regions of 1 MiB; nothing beyond.
class FakeRam final : public DmaMemory {
public:
    static constexpr uint64_t kRegion = 1 << 20;
    static constexpr uint64_t kSize = 2 * kRegion;
    FakeRam() : bytes_(kSize) {}

    bool append_ram(uint64_t gpa, uint64_t length, std::vector<std::span<std::byte>>& out) const override {
        if (gpa > kSize || length > kSize - gpa) return false;
        while (length > 0) {
            const uint64_t n = std::min(length, (gpa / kRegion + 1) * kRegion - gpa);
            out.emplace_back(const_cast<std::byte*>(bytes_.data()) + gpa, n);
            gpa += n;
            length -= n;
        }
        return true;
    }
    std::byte* at(uint64_t gpa) { return bytes_.data() + gpa; }
    void put_prd(uint64_t gpa, uint32_t index, uint32_t base, uint32_t bytes, bool last) {
        const ata::PrdEntry entry{base, static_cast<uint16_t>(bytes == 0x10000 ? 0 : bytes),
                                  static_cast<uint16_t>(last ? ata::kPrdEndOfTable : 0)};
        std::memcpy(at(gpa + 8ull * index), &entry, sizeof entry);
    }

private:
    std::vector<std::byte> bytes_;
};

class CountingLine final : public InterruptLine {
public:
    void trigger() override { ++edges; }
    int edges = 0;
};

class HandRunWorker final : public JobSignal {
public:
    void job_ready() override { ++signals; }
    int signals = 0;
};

struct Harness {
    explicit Harness(Disk* master, Disk* slave = nullptr) : channel({master, slave}, ram, line, worker, events) {}

    void out8(uint16_t offset, uint8_t value) { channel.write_command_block(offset, std::span<const uint8_t>(&value, 1)); }
    uint8_t in8(uint16_t offset) {
        uint8_t value = 0;
        channel.read_command_block(offset, std::span<uint8_t>(&value, 1));
        return value;
    }
    uint8_t status() { return in8(ata::kStatusCommand); }
    uint8_t error() { return in8(ata::kErrorFeature); }
    uint8_t alternate_status() {
        uint8_t value = 0;
        channel.read_control_block(std::span<uint8_t>(&value, 1));
        return value;
    }
    void control(uint8_t value) { channel.write_control_block(std::span<const uint8_t>(&value, 1)); }
    void select(uint8_t drive) { out8(ata::kDevice, static_cast<uint8_t>(ata::kDeviceLba | (drive ? ata::kDeviceSlave : 0))); }
    void lba28(uint32_t lba, uint8_t count, uint8_t drive = 0) {
        out8(ata::kDevice, static_cast<uint8_t>(ata::kDeviceLba | (drive ? ata::kDeviceSlave : 0) | ((lba >> 24) & 0x0f)));
        out8(ata::kSectorCount, count);
        out8(ata::kLbaLow, static_cast<uint8_t>(lba));
        out8(ata::kLbaMid, static_cast<uint8_t>(lba >> 8));
        out8(ata::kLbaHigh, static_cast<uint8_t>(lba >> 16));
    }
    void lba48(uint64_t lba, uint16_t count) {
        out8(ata::kDevice, ata::kDeviceLba);
        for (int half : {1, 0}) {
            out8(ata::kSectorCount, static_cast<uint8_t>(count >> (8 * half)));
            out8(ata::kLbaLow, static_cast<uint8_t>(lba >> (24 * half)));
            out8(ata::kLbaMid, static_cast<uint8_t>(lba >> (24 * half + 8)));
            out8(ata::kLbaHigh, static_cast<uint8_t>(lba >> (24 * half + 16)));
        }
    }
    void command(uint8_t code) { out8(ata::kStatusCommand, code); }
    int run_jobs() {
        int jobs = 0;
        while (channel.run_job()) ++jobs;
        return jobs;
    }
    // `bytes` bytes through the data port in `width`-byte accesses.
    std::vector<uint8_t> read_data(size_t bytes, size_t width = 2) {
        std::vector<uint8_t> data(bytes);
        for (size_t i = 0; i < bytes; i += width) channel.read_command_block(ata::kData, std::span<uint8_t>(data.data() + i, width));
        return data;
    }
    void write_data(const std::vector<uint8_t>& data, size_t width = 2) {
        for (size_t i = 0; i < data.size(); i += width)
            channel.write_command_block(ata::kData, std::span<const uint8_t>(data.data() + i, width));
    }
    void bm_out8(uint16_t offset, uint8_t value) { channel.write_bus_master(offset, std::span<const uint8_t>(&value, 1)); }
    uint8_t bm_in8(uint16_t offset) {
        uint8_t value = 0;
        channel.read_bus_master(offset, std::span<uint8_t>(&value, 1));
        return value;
    }
    void bm_table(uint32_t gpa) {
        const uint8_t bytes[4] = {static_cast<uint8_t>(gpa), static_cast<uint8_t>(gpa >> 8), static_cast<uint8_t>(gpa >> 16),
                                  static_cast<uint8_t>(gpa >> 24)};
        channel.write_bus_master(ata::kBmPrdTable, std::span<const uint8_t>(bytes, 4));
    }
    // A DMA command the engine starts at once; returns after the worker ran it.
    void dma(uint8_t code, bool to_memory, uint32_t table) {
        bm_table(table);
        bm_out8(ata::kBmCommand, to_memory ? ata::kBmToMemory : 0);
        command(code);
        bm_out8(ata::kBmCommand, static_cast<uint8_t>((to_memory ? ata::kBmToMemory : 0) | ata::kBmStart));
        run_jobs();
        bm_out8(ata::kBmCommand, 0);
    }

    FakeRam ram;
    CountingLine line;
    HandRunWorker worker;
    ChannelEvents events;
    IdeChannel channel;
};

uint16_t word(const std::vector<uint8_t>& data, size_t index) {
    return static_cast<uint16_t>(data[2 * index] | data[2 * index + 1] << 8);
}

std::string ata_string(const std::vector<uint8_t>& data, size_t first_word, size_t words) {
    std::string text;
    for (size_t i = first_word; i < first_word + words; ++i) {
        text += static_cast<char>(word(data, i) >> 8);
        text += static_cast<char>(word(data, i) & 0xff);
    }
    return text;
}

constexpr uint8_t kReady = ata::kStatusDrdy;
constexpr uint8_t kDataRequest = ata::kStatusDrdy | ata::kStatusDrq;
constexpr uint8_t kFailed = ata::kStatusDrdy | ata::kStatusErr;

}  // namespace

TEST_CASE("storage IDE: after reset both present devices are ready with the ATA signature; an absent one reads 0", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    CHECK(h.status() == kReady);
    CHECK(h.error() == 0x01);
    CHECK(h.in8(ata::kSectorCount) == 1);
    CHECK(h.in8(ata::kLbaLow) == 1);
    h.select(1);
    CHECK(h.status() == 0);
    CHECK(h.alternate_status() == 0);
    h.command(ata::kCommandIdentifyDevice);  // nobody there to take it
    CHECK(h.status() == 0);
    CHECK(h.channel.stats().commands == 0);
    CHECK(h.line.edges == 0);
}

TEST_CASE("storage IDE: IDENTIFY DEVICE describes the disk, with a valid checksum", "[ide]") {
    FakeDisk master("a-disk-id-longer-than-twenty-chars", 0x12345678);  // beyond LBA28
    Harness h(&master);
    h.select(0);
    h.command(ata::kCommandIdentifyDevice);
    CHECK(h.status() == kDataRequest);
    CHECK(h.line.edges == 1);
    const std::vector<uint8_t> data = h.read_data(512, 4);
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 1);  // no interrupt after the last block of a PIO read
    CHECK(ata_string(data, ata::kIdSerialNumber, 10) == "a-disk-id-longer-tha");
    CHECK(ata_string(data, ata::kIdModelNumber, 20).rfind("hvkvm IDE disk", 0) == 0);
    CHECK((word(data, ata::kIdCapabilities) & (ata::kIdCapabilityLba | ata::kIdCapabilityDma)) ==
          (ata::kIdCapabilityLba | ata::kIdCapabilityDma));
    CHECK((word(data, ata::kIdLba28Sectors) | uint32_t{word(data, ata::kIdLba28Sectors + 1)} << 16) == 0x0fffffff);
    uint64_t lba48 = 0;
    for (int i = 3; i >= 0; --i) lba48 = lba48 << 16 | word(data, ata::kIdLba48Sectors + i);
    CHECK(lba48 == 0x12345678);
    CHECK((word(data, ata::kIdCommandSets2) & ata::kIdLba48) != 0);
    CHECK((word(data, ata::kIdCommandSets2) & ata::kIdFlushCacheExt) != 0);
    CHECK((word(data, ata::kIdEnabled1) & ata::kIdWriteCache) != 0);
    CHECK((word(data, ata::kIdUltraDma) & 0x3f) == 0x3f);
    CHECK((word(data, ata::kIdUltraDma) >> 8) == 0x04);  // UDMA 2 selected at power-on
    CHECK(word(data, ata::kIdIntegrity) % 256 == ata::kIdIntegritySignature);
    uint8_t sum = 0;
    for (uint8_t byte : data) sum = static_cast<uint8_t>(sum + byte);
    CHECK(sum == 0);
}

TEST_CASE("storage IDE: a PIO read is BSY until the worker ran, then one DRQ block and one interrupt per sector", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.lba28(10, 3);
    h.command(ata::kCommandReadSectors);
    CHECK(h.status() == ata::kStatusBsy);
    CHECK(h.worker.signals == 1);
    CHECK(h.read_data(2) == std::vector<uint8_t>{0xff, 0xff});  // no data while BSY
    CHECK(h.channel.stats().data_without_drq == 1);
    REQUIRE(h.run_jobs() == 1);
    for (uint32_t sector = 0; sector < 3; ++sector) {
        CHECK(h.line.edges == static_cast<int>(sector + 1));
        CHECK(h.status() == kDataRequest);
        const std::vector<uint8_t> data = h.read_data(kSector, sector == 1 ? 4 : 2);
        for (uint32_t i = 0; i < kSector; ++i) REQUIRE(std::byte(data[i]) == FakeDisk::pattern((10 + sector) * kSector + i));
    }
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 3);
    CHECK(h.channel.stats().pio_sectors == 3);
}

TEST_CASE("storage IDE: a PIO read longer than the buffer runs as several jobs", "[ide]") {
    constexpr uint32_t kChunk = IdeChannel::kBufferBytes / kSector;
    FakeDisk master("disk0", 2 * kChunk + 8);
    Harness h(&master);
    h.lba48(4, static_cast<uint16_t>(kChunk + 3));
    h.command(ata::kCommandReadSectorsExt);
    REQUIRE(h.run_jobs() == 1);
    h.read_data(size_t{kChunk} * kSector, 4);
    CHECK(h.status() == ata::kStatusBsy);  // the next chunk is being read
    REQUIRE(h.run_jobs() == 1);
    const std::vector<uint8_t> data = h.read_data(3 * kSector, 4);
    CHECK(std::byte(data[0]) == FakeDisk::pattern((4 + kChunk) * kSector));
    CHECK(h.status() == kReady);
    CHECK(master.reads == 2);
}

TEST_CASE("storage IDE: a PIO write takes the first block without an interrupt and writes when the buffer is full", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.lba28(5, 2);
    h.command(ata::kCommandWriteSectors);
    CHECK(h.status() == kDataRequest);
    CHECK(h.line.edges == 0);
    CHECK(h.worker.signals == 0);
    std::vector<uint8_t> block(kSector);
    for (uint32_t i = 0; i < kSector; ++i) block[i] = static_cast<uint8_t>(i ^ 0x5a);
    h.write_data(block, 4);
    CHECK(h.status() == kDataRequest);  // ready for the second block
    CHECK(h.line.edges == 1);
    h.write_data(block, 2);
    CHECK(h.status() == ata::kStatusBsy);
    CHECK(master.writes == 0);
    REQUIRE(h.run_jobs() == 1);
    CHECK(master.writes == 1);
    CHECK(master.last_write_mode == WriteMode::kCached);
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 2);
    for (uint32_t i = 0; i < 2 * kSector; ++i) REQUIRE(master.at(5 * kSector + i) == std::byte(block[i % kSector]));
}

TEST_CASE("storage IDE: with the write cache disabled writes are write-through", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.select(0);
    h.out8(ata::kErrorFeature, ata::kFeatureDisableWriteCache);
    h.command(ata::kCommandSetFeatures);
    CHECK(h.status() == kReady);
    h.lba28(0, 1);
    h.command(ata::kCommandWriteSectors);
    h.write_data(std::vector<uint8_t>(kSector, 1));
    h.run_jobs();
    CHECK(master.last_write_mode == WriteMode::kWriteThrough);
}

TEST_CASE("storage IDE: the last sector of the disk is addressable, one past it is IDNF (LBA28 and LBA48)", "[ide]") {
    FakeDisk master("disk0", 300);
    Harness h(&master);
    h.lba28(300 - 4, 4);
    h.command(ata::kCommandReadSectors);
    CHECK(h.status() == ata::kStatusBsy);
    h.run_jobs();
    h.read_data(4 * kSector);
    CHECK(h.status() == kReady);

    h.lba28(300 - 4 + 1, 4);
    h.command(ata::kCommandReadSectors);
    CHECK(h.status() == kFailed);
    CHECK(h.error() == ata::kErrorIdnf);
    CHECK(h.worker.signals == 1);  // no job for the refused command

    h.lba48(300 - 1, 1);
    h.command(ata::kCommandReadDmaExt);
    CHECK(h.status() == ata::kStatusBsy);
    h.control(ata::kControlSrst);  // abandon it
    h.control(0);
    h.lba48(300, 1);
    h.command(ata::kCommandWriteDmaExt);
    CHECK(h.status() == kFailed);
    CHECK(h.error() == ata::kErrorIdnf);
}

TEST_CASE("storage IDE: a sector count of 0 means 256 (LBA28) and 65536 (LBA48)", "[ide]") {
    FakeDisk master("disk0", 65536);
    Harness h(&master);
    h.lba28(65536 - 256, 0);
    h.command(ata::kCommandReadSectors);
    CHECK(h.status() == ata::kStatusBsy);
    h.control(ata::kControlSrst), h.control(0);
    h.lba28(65536 - 255, 0);
    h.command(ata::kCommandReadSectors);
    CHECK(h.error() == ata::kErrorIdnf);

    // 32 MiB by DMA through 512 PRD entries that all point at the same 64 KiB of RAM.
    for (uint32_t i = 0; i < 512; ++i) h.ram.put_prd(0x10000, i, 0x40000, 0x10000, i == 511);
    h.lba48(0, 0);
    h.dma(ata::kCommandReadDmaExt, true, 0x10000);
    CHECK(h.status() == kReady);
    CHECK(h.channel.stats().dma_bytes == 32u << 20);
    CHECK(*h.ram.at(0x40000) == FakeDisk::pattern(uint64_t{511} * 0x10000));
    h.lba48(1, 0);
    h.command(ata::kCommandReadDmaExt);
    CHECK(h.error() == ata::kErrorIdnf);
}

TEST_CASE("storage IDE: a read-only disk refuses PIO and DMA writes and serves reads", "[ide]") {
    FakeDisk master("ro", 64, true);
    Harness h(&master);
    for (uint8_t command : {ata::kCommandWriteSectors, ata::kCommandWriteSectorsExt, ata::kCommandWriteDma, ata::kCommandWriteDmaExt}) {
        const bool extended = command == ata::kCommandWriteSectorsExt || command == ata::kCommandWriteDmaExt;
        if (extended) h.lba48(0, 1);
        else h.lba28(0, 1);
        h.command(command);
        CHECK(h.status() == kFailed);
        CHECK(h.error() == ata::kErrorAbrt);
    }
    CHECK(master.writes == 0);
    CHECK(h.worker.signals == 0);
    h.lba28(0, 1);
    h.command(ata::kCommandReadSectors);
    h.run_jobs();
    CHECK(h.status() == kDataRequest);
}

TEST_CASE("storage IDE: CHS addressing, unknown commands and bad SET FEATURES are aborted", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.out8(ata::kDevice, 0);  // CHS
    h.command(ata::kCommandReadSectors);
    CHECK(h.status() == kFailed);
    CHECK(h.error() == ata::kErrorAbrt);
    for (uint8_t command : {0x00, 0x08, 0x91, 0xc4, 0xff}) {
        h.command(command);
        CHECK(h.status() == kFailed);
        CHECK(h.error() == ata::kErrorAbrt);
    }
    struct {
        uint8_t feature, mode;
        bool accepted;
    } const cases[] = {{ata::kFeatureSetTransferMode, 0x0c, true},  {ata::kFeatureSetTransferMode, 0x0d, false},
                       {ata::kFeatureSetTransferMode, 0x22, true},  {ata::kFeatureSetTransferMode, 0x23, false},
                       {ata::kFeatureSetTransferMode, 0x45, true},  {ata::kFeatureSetTransferMode, 0x46, false},
                       {ata::kFeatureSetTransferMode, 0x01, true},  {ata::kFeatureSetTransferMode, 0x02, false},
                       {ata::kFeatureEnableWriteCache, 0, true},   {0x66, 0, false}};
    for (const auto& c : cases) {
        h.out8(ata::kErrorFeature, c.feature);
        h.out8(ata::kSectorCount, c.mode);
        h.command(ata::kCommandSetFeatures);
        CHECK(h.status() == (c.accepted ? kReady : kFailed));
    }
    CHECK(h.channel.stats().errors == 1 + 5 + 5);
}

TEST_CASE("storage IDE: LBA48 registers keep their previous bytes, read back with HOB", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.lba48(0x123456789abcull, 0x0102);
    CHECK(h.in8(ata::kLbaLow) == 0xbc);
    CHECK(h.in8(ata::kSectorCount) == 0x02);
    h.control(ata::kControlHob);
    CHECK(h.in8(ata::kLbaLow) == 0x56);
    CHECK(h.in8(ata::kLbaHigh) == 0x12);
    CHECK(h.in8(ata::kSectorCount) == 0x01);
    h.out8(ata::kLbaLow, 0);  // a task-file write clears HOB
    CHECK(h.in8(ata::kLbaMid) == 0x9a);
}

TEST_CASE("storage IDE: task-file writes while busy are ignored and counted", "[ide]") {
    FakeDisk master("disk0", 64), slave("disk1", 64);
    Harness h(&master, &slave);
    h.lba28(1, 1);
    h.command(ata::kCommandReadSectors);
    h.select(1);                                  // ignored: the master stays selected
    h.command(ata::kCommandIdentifyDevice);       // ignored
    h.out8(ata::kLbaLow, 99);                     // ignored
    CHECK(h.channel.stats().ignored_writes == 3);
    h.run_jobs();
    CHECK(h.status() == kDataRequest);
    CHECK(std::byte(h.read_data(kSector)[0]) == FakeDisk::pattern(kSector));
    h.select(1);
    h.command(ata::kCommandIdentifyDevice);
    CHECK(h.status() == kDataRequest);
}

TEST_CASE("storage IDE: nIEN keeps the device from interrupting", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.control(ata::kControlNien);
    h.select(0);
    h.command(ata::kCommandIdentifyDevice);
    h.read_data(kSector);
    h.command(ata::kCommandFlushCache);
    h.run_jobs();
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 0);
    CHECK((h.bm_in8(ata::kBmStatus) & ata::kBmInterrupt) == 0);
}

TEST_CASE("storage IDE: FLUSH CACHE runs on the worker; a failed flush is a device fault", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.select(0);
    h.command(ata::kCommandFlushCacheExt);
    CHECK(h.status() == ata::kStatusBsy);
    CHECK(master.flushes == 0);
    h.run_jobs();
    CHECK(master.flushes == 1);
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 1);
    master.flush_error = EIO;
    h.command(ata::kCommandFlushCache);
    h.run_jobs();
    CHECK(h.status() == (kFailed | ata::kStatusDf));
    CHECK(h.error() == ata::kErrorAbrt);
    CHECK(h.channel.stats().host_errors == 1);
}

TEST_CASE("storage IDE: host read and write errors reach the guest as UNC and as a device fault", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    master.read_error = EIO;
    h.lba28(0, 2);
    h.command(ata::kCommandReadSectors);
    h.run_jobs();
    CHECK(h.status() == kFailed);
    CHECK(h.error() == ata::kErrorUnc);
    master.write_error = ENOSPC;
    h.lba28(0, 1);
    h.command(ata::kCommandWriteSectors);
    h.write_data(std::vector<uint8_t>(kSector));
    h.run_jobs();
    CHECK(h.status() == (kFailed | ata::kStatusDf));
    CHECK(h.error() == ata::kErrorAbrt);
    h.ram.put_prd(0, 0, 0x1000, kSector, true);
    h.lba28(0, 1);
    h.dma(ata::kCommandReadDma, true, 0);
    CHECK(h.error() == ata::kErrorUnc);
    CHECK(h.channel.stats().host_errors == 3);
}

TEST_CASE("storage IDE: DMA moves data through a PRD table, across RAM regions, and interrupts once", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    // 3 sectors: 1000 bytes just below the region boundary, 536 just above it.
    const uint32_t first = FakeRam::kRegion - 1000;
    h.ram.put_prd(0x2000, 0, first, 1536, true);
    h.lba28(7, 3);
    h.dma(ata::kCommandReadDma, true, 0x2000);
    CHECK(h.status() == kReady);
    CHECK(h.line.edges == 1);
    CHECK((h.bm_in8(ata::kBmStatus) & (ata::kBmInterrupt | ata::kBmActive | ata::kBmError)) == ata::kBmInterrupt);
    for (uint32_t i = 0; i < 1536; ++i) REQUIRE(*h.ram.at(first + i) == FakeDisk::pattern(7 * kSector + i));
    h.bm_out8(ata::kBmStatus, ata::kBmInterrupt);  // write one to clear
    CHECK((h.bm_in8(ata::kBmStatus) & ata::kBmInterrupt) == 0);

    // And back out to another place, from two entries.
    for (uint32_t i = 0; i < 1024; ++i) *h.ram.at(0x30000 + i) = std::byte(static_cast<uint8_t>(i * 3));
    h.ram.put_prd(0x2000, 0, 0x30000, 600, false);
    h.ram.put_prd(0x2000, 1, 0x30000 + 600, 424, true);
    h.lba28(20, 2);
    h.dma(ata::kCommandWriteDma, false, 0x2000);
    CHECK(h.status() == kReady);
    for (uint32_t i = 0; i < 1024; ++i) REQUIRE(master.at(20 * kSector + i) == std::byte(static_cast<uint8_t>(i * 3)));
    CHECK(h.channel.stats().dma_transfers == 2);
}

TEST_CASE("storage IDE: a DMA command waits for the engine's start bit, in either order", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.ram.put_prd(0x2000, 0, 0x8000, kSector, true);
    h.bm_table(0x2000);
    h.lba28(1, 1);
    h.command(ata::kCommandReadDma);
    CHECK(h.status() == ata::kStatusBsy);
    CHECK(h.worker.signals == 0);
    h.bm_out8(ata::kBmCommand, ata::kBmToMemory | ata::kBmStart);
    CHECK((h.bm_in8(ata::kBmStatus) & ata::kBmActive) != 0);
    CHECK(h.run_jobs() == 1);
    CHECK((h.bm_in8(ata::kBmStatus) & ata::kBmActive) == 0);
    h.bm_out8(ata::kBmCommand, ata::kBmToMemory);

    h.bm_out8(ata::kBmCommand, ata::kBmToMemory | ata::kBmStart);  // engine first
    CHECK(h.worker.signals == 1);
    h.lba28(2, 1);
    h.command(ata::kCommandReadDma);
    CHECK(h.run_jobs() == 1);
    CHECK(h.status() == kReady);
    CHECK(*h.ram.at(0x8000) == FakeDisk::pattern(2 * kSector));
}

namespace {

// Runs a one-sector DMA read through the table at `table`; true if it moved its data.
bool dma_read_ok(Harness& h, uint32_t table, uint32_t sectors = 1) {
    h.bm_out8(ata::kBmStatus, ata::kBmError | ata::kBmInterrupt);
    const int edges = h.line.edges;
    h.lba28(0, static_cast<uint8_t>(sectors));
    h.dma(ata::kCommandReadDma, true, table);
    REQUIRE(h.line.edges == edges + 1);  // every outcome interrupts, errors included
    const bool error = h.bm_in8(ata::kBmStatus) & ata::kBmError;
    REQUIRE(error == (h.status() == kFailed));
    if (error) REQUIRE(h.error() == ata::kErrorAbrt);
    return !error;
}

}  // namespace

TEST_CASE("storage IDE: PRD limits: each at exact fit and one past", "[ide]") {
    FakeDisk master("disk0", 2048);
    Harness h(&master);

    SECTION("the byte count must equal the sector count") {
        h.ram.put_prd(0x2000, 0, 0x8000, kSector, true);
        CHECK(dma_read_ok(h, 0x2000));
        h.ram.put_prd(0x2000, 0, 0x8000, kSector + 2, true);
        CHECK_FALSE(dma_read_ok(h, 0x2000));
        h.ram.put_prd(0x2000, 0, 0x8000, kSector - 2, true);
        CHECK_FALSE(dma_read_ok(h, 0x2000));
        h.ram.put_prd(0x2000, 0, 0x8000, 256, false);  // more entries than bytes: stops at the excess
        h.ram.put_prd(0x2000, 1, 0x8000, 256, false);
        h.ram.put_prd(0x2000, 2, 0x8000, 256, true);
        CHECK_FALSE(dma_read_ok(h, 0x2000));
    }
    SECTION("the end-of-table flag must come before the table's 64 KiB boundary") {
        // A table filling its 64 KiB block: 8192 entries of 16 bytes = 256 sectors.
        for (uint32_t i = 0; i < ata::kPrdTableMaxEntries; ++i)
            h.ram.put_prd(0x10000, i, 0x40000, 16, i + 1 == ata::kPrdTableMaxEntries);
        CHECK(dma_read_ok(h, 0x10000, 256));
        h.ram.put_prd(0x10000, ata::kPrdTableMaxEntries - 1, 0x40000, 16, false);
        CHECK_FALSE(dma_read_ok(h, 0x10000, 256));
    }
    SECTION("buffers must be RAM, to the last byte") {
        h.ram.put_prd(0x2000, 0, FakeRam::kSize - kSector, kSector, true);
        CHECK(dma_read_ok(h, 0x2000));
        h.ram.put_prd(0x2000, 0, FakeRam::kSize - kSector + 2, kSector, true);
        CHECK_FALSE(dma_read_ok(h, 0x2000));
        h.ram.put_prd(0x2000, 0, 0xfec00000, kSector, true);  // MMIO
        CHECK_FALSE(dma_read_ok(h, 0x2000));
    }
    SECTION("the table must be RAM") {
        h.ram.put_prd(FakeRam::kSize - 8, 0, 0x8000, kSector, true);
        CHECK(dma_read_ok(h, FakeRam::kSize - 8));
        h.ram.put_prd(FakeRam::kSize - 8, 0, 0x8000, 256, false);  // the next entry is past RAM
        CHECK_FALSE(dma_read_ok(h, FakeRam::kSize - 8));
        CHECK_FALSE(dma_read_ok(h, 0xfee00000));
    }
    SECTION("the engine's direction must match the command") {
        h.ram.put_prd(0x2000, 0, 0x8000, kSector, true);
        h.lba28(0, 1);
        h.dma(ata::kCommandReadDma, false, 0x2000);
        CHECK(h.status() == kFailed);
        CHECK((h.bm_in8(ata::kBmStatus) & ata::kBmError) != 0);
        CHECK(master.reads == 0);
    }
    CHECK(master.writes == 0);
}

TEST_CASE("storage IDE: the PRD reader stops at the table's 64 KiB boundary wherever the table starts", "[ide]") {
    FakeRam ram;
    // 16 entries before the boundary: the 16th may end the table, a 17th is never read.
    const uint64_t table = 0x20000 - 16 * 8;
    for (uint32_t i = 0; i < 17; ++i) ram.put_prd(table, i, 0x1000, 2, i == 16);
    PrdBuffers result = read_prd_table(ram, table, 17 * 2);
    CHECK(result.problem == PrdProblem::kNoEndOfTable);
    CHECK(result.entries == 16);
    ram.put_prd(table, 15, 0x1000, 2, true);
    result = read_prd_table(ram, table, 16 * 2);
    CHECK(result.problem == PrdProblem::kNone);
    CHECK(result.buffers.size() == 16);
    CHECK(read_prd_table(ram, table + 2, 32).problem == PrdProblem::kTableNotAligned);
}

TEST_CASE("storage IDE: a reset during a running job keeps the devices BSY until it ends and drops its result", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.lba28(3, 1);
    h.command(ata::kCommandReadSectors);
    uint8_t status_while_running = 0;
    master.during_io = [&] {
        h.control(ata::kControlSrst);
        h.control(0);
        status_while_running = h.status();
        h.lba28(0, 1);  // ignored: still resetting
        h.command(ata::kCommandWriteSectors);
    };
    REQUIRE(h.run_jobs() == 1);
    master.during_io = nullptr;
    CHECK(status_while_running == ata::kStatusBsy);
    CHECK(h.status() == kReady);
    CHECK(h.in8(ata::kSectorCount) == 1);  // signature
    CHECK(h.line.edges == 0);              // the dropped job raised nothing
    CHECK(h.read_data(2) == std::vector<uint8_t>{0xff, 0xff});
    h.lba28(3, 1);
    h.command(ata::kCommandReadSectors);
    h.run_jobs();
    CHECK(std::byte(h.read_data(kSector)[0]) == FakeDisk::pattern(3 * kSector));
}

TEST_CASE("storage IDE: a reset drops a queued job before it runs", "[ide]") {
    FakeDisk master("disk0", 64);
    Harness h(&master);
    h.select(0);
    h.command(ata::kCommandFlushCache);
    h.control(ata::kControlSrst);
    CHECK(h.status() == ata::kStatusBsy);
    h.control(0);
    CHECK(h.status() == kReady);
    CHECK(h.run_jobs() == 0);
    CHECK(master.flushes == 0);
}
