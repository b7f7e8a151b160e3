// The ATA driver on the VMM's emulated IDE controller, end to end. The disks are test images
// prepared by the host (tests/integration/disk_pattern_tool.cpp): sector 0 holds a PatternHeader
// naming the host's pattern region (checked here), the guest's region (written here, checked by
// the host after the run) and the scenario. Without such a disk the tests skip.
#include "arch/x86_64/time.h"
#include "block/block.h"
#include "drivers/ata.h"
#include "hvkvm/abi/ata.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/test/ktest.h"
#include "lib/disk_pattern.h"
#include "lib/string.h"
#include "tests/storage_test_support.h"

namespace hvkvm::guest {
namespace {

using block::IoStatus;
using test::HeapBuffer;
using test::read_and_check;
using test::read_header;
namespace wire = abi::ata;

constexpr const char* kNoDisk = "needs an IDE disk (configs/ide-disk.json)";
constexpr const char* kNoPattern = "needs a disk prepared by disk-pattern (tests/integration)";
constexpr uint32_t kSector = block::kSectorSize;

// Restores the channel's transfer mode when a test ends.
class ModeScope {
public:
    ModeScope() : saved_(ata::mode()) {}
    ~ModeScope() { ata::set_mode(saved_); }

private:
    ata::Mode saved_;
};

}  // namespace

KTEST(storage, ata_identify_describes_the_disk) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    const block::DeviceInfo info = block::info(*drive->device);
    KEXPECT_EQ(info.sectors, drive->sectors);
    KEXPECT(drive->lba48);
    KEXPECT(strcmp(drive->model, "hvkvm IDE disk") == 0);
    KEXPECT(drive->serial[0] != '\0');
    KEXPECT_EQ(info.queue_depth, 1u);
    KEXPECT_EQ(info.max_sectors, 2048u);
}

KTEST(storage, ata_reads_the_host_pattern_by_pio_and_dma) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    disk_pattern::PatternHeader header;
    KSKIP_UNLESS(read_header(*drive->device, header), kNoPattern);
    ModeScope restore;
    const ata::ChannelStats before = ata::stats();
    KASSERT(ata::set_mode(ata::Mode::kPio));
    const uint32_t pio_sizes[] = {1, 7, 8, 64, 300};  // 300: a READ SECTORS EXT
    KEXPECT(read_and_check(*drive->device, header.host_seed, header.host_first, 512, pio_sizes, 5));
    KASSERT(ata::set_mode(ata::Mode::kDma));
    const uint32_t dma_sizes[] = {1, 8, 256, 257, 2048, 100};
    KEXPECT(read_and_check(*drive->device, header.host_seed, header.host_first, header.host_sectors, dma_sizes, 6));
    const ata::ChannelStats after = ata::stats();
    KEXPECT_EQ(after.pio_commands - before.pio_commands, 10u);  // one per Io: 2048 sectors fit a command
    KEXPECT_EQ(after.dma_commands - before.dma_commands, 11u);
    KEXPECT_EQ(after.stray_interrupts, before.stray_interrupts);
}

KTEST(storage, ata_writes_the_guest_pattern_by_pio_and_dma) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    disk_pattern::PatternHeader header;
    KSKIP_UNLESS(read_header(*drive->device, header) && header.flags == 0, kNoPattern);
    KASSERT(header.guest_sectors == 2048);
    ModeScope restore;
    HeapBuffer data(2048 * kSector);
    test::fill_pattern(data.data(), header.guest_first, 2048, header.guest_seed);
    block::Device& device = *drive->device;
    // 64 sectors by PIO (each 512-byte block is 128 exits), the rest by DMA, submitted together:
    // adjacent writes queued behind the first are merged into fewer commands.
    KASSERT(ata::set_mode(ata::Mode::kPio));
    const uint32_t pio_pieces[] = {1, 3, 60};
    uint64_t offset = 0;
    for (uint32_t sectors : pio_pieces) {
        KEXPECT(block::write(device, header.guest_first + offset, sectors, data.data() + offset * kSector) == IoStatus::kOk);
        offset += sectors;
    }
    KASSERT(ata::set_mode(ata::Mode::kDma));
    const uint32_t dma_pieces[] = {8, 120, 256, 600, 1000};
    block::Io ios[5];
    block::Io* batch[5];
    for (uint32_t i = 0; i < 5; ++i) {
        ios[i].operation = block::Operation::kWrite;
        ios[i].sector = header.guest_first + offset;
        ios[i].sectors = dma_pieces[i];
        ios[i].buffer = data.data() + offset * kSector;
        batch[i] = &ios[i];
        offset += dma_pieces[i];
    }
    KASSERT(offset == 2048);
    const uint64_t merged_before = block::stats(device).merged_ios;
    block::CompletionPort port;
    block::submit(port, device, batch, 5);
    while (port.wait()) {
    }
    for (const block::Io& io : ios) KEXPECT(io.status == IoStatus::kOk);
    KEXPECT(block::stats(device).merged_ios > merged_before);
    KEXPECT(block::flush(device) == IoStatus::kOk);
    // Read back the other way round: the DMA part by PIO (a little of it) and all of it by DMA.
    const uint32_t sizes[] = {2048};
    KEXPECT(read_and_check(device, header.guest_seed, header.guest_first, 2048, sizes, 1));
    KASSERT(ata::set_mode(ata::Mode::kPio));
    KEXPECT(read_and_check(device, header.guest_seed, header.guest_first + 64, 64, sizes, 1));
}

KTEST(storage, ata_read_only_disk_refuses_writes) {
    const ata::DriveInfo* drive = ata::drive(1);
    KSKIP_UNLESS(drive, "needs a second IDE disk (the slave)");
    disk_pattern::PatternHeader header;
    KSKIP_UNLESS(read_header(*drive->device, header) && (header.flags & disk_pattern::kExpectReadOnly),
                 "needs the slave prepared with disk-pattern --read-only");
    ModeScope restore;
    HeapBuffer data(8 * kSector);
    memset(data.data(), 0x5a, 8 * kSector);
    const ata::Mode modes[] = {ata::Mode::kPio, ata::Mode::kDma};
    for (ata::Mode mode : modes) {
        KASSERT(ata::set_mode(mode));
        uint32_t detail = 0;
        KEXPECT(block::write(*drive->device, header.guest_first, 8, data.data(), &detail) == IoStatus::kDeviceError);
        KEXPECT_EQ(detail, uint32_t{wire::kStatusDrdy | wire::kStatusErr} << 8 | wire::kErrorAbrt);
    }
    KEXPECT(block::read(*drive->device, header.guest_first, 8, data.data()) == IoStatus::kOk);
    KEXPECT(test::check_pattern_or_zero(data.data(), header.guest_first, 8, header.guest_seed));
    KEXPECT(data.data()[0] == 0);  // still never written
    const uint32_t sizes[] = {64};
    KEXPECT(read_and_check(*drive->device, header.host_seed, header.host_first, 256, sizes, 1));
}

namespace {

ata::RawCommand raw_read(uint64_t lba, bool dma, uint32_t prd_table, void* buffer) {
    ata::RawCommand command{};
    command.command = dma ? wire::kCommandReadDmaExt : wire::kCommandReadSectorsExt;
    command.lba = lba;
    command.sectors = 1;
    command.extended = true;
    command.dma = dma;
    command.prd_table = prd_table;
    command.buffer = buffer;
    return command;
}

bool failed_with(const ata::RawResult& result, uint8_t error) {
    return result.completed && (result.status & wire::kStatusErr) && result.error == error;
}

}  // namespace

KTEST(storage, ata_errors_past_the_end_and_bad_prd_tables_reach_the_guest) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    ModeScope restore;
    KSKIP_UNLESS(ata::set_mode(ata::Mode::kDma), "needs the controller's bus-master DMA engine");
    block::Device& device = *drive->device;
    const uint64_t last = drive->sectors - 1;
    alignas(4096) static uint8_t buffer[4096];
    alignas(8) static wire::PrdEntry table[2];
    const auto table_address = static_cast<uint32_t>(reinterpret_cast<uint64_t>(table));
    const auto buffer_address = static_cast<uint32_t>(reinterpret_cast<uint64_t>(buffer));

    // The block layer refuses what lies past the end; the device itself says IDNF.
    KEXPECT(block::read(device, last, 1, buffer) == IoStatus::kOk);
    KEXPECT(block::read(device, last, 2, buffer) == IoStatus::kOutOfRange);
    ata::RawResult result = ata::execute_raw(0, raw_read(last, false, 0, buffer));
    KEXPECT(result.completed && !(result.status & wire::kStatusErr));
    KEXPECT(failed_with(ata::execute_raw(0, raw_read(last + 1, false, 0, buffer)), wire::kErrorIdnf));
    table[0] = {buffer_address, kSector, wire::kPrdEndOfTable};
    KEXPECT(failed_with(ata::execute_raw(0, raw_read(last + 1, true, table_address, nullptr)), wire::kErrorIdnf));
    result = ata::execute_raw(0, raw_read(last, true, table_address, nullptr));
    KEXPECT(result.completed && !(result.status & wire::kStatusErr));

    // Bus-master errors: a buffer in the MMIO hole, a table outside RAM, a byte count that
    // disagrees with the sector count. Each ends the command with ABRT and the engine's error bit.
    struct {
        uint32_t table;
        wire::PrdEntry entry;
    } const bad[] = {{table_address, {0xfec00000u, kSector, wire::kPrdEndOfTable}},
                     {0xfeb00000u, {buffer_address, kSector, wire::kPrdEndOfTable}},
                     {table_address, {buffer_address, 2 * kSector, wire::kPrdEndOfTable}}};
    for (const auto& c : bad) {
        table[0] = c.entry;
        result = ata::execute_raw(0, raw_read(0, true, c.table, nullptr));
        KEXPECT(failed_with(result, wire::kErrorAbrt));
        KEXPECT((result.bus_master_status & wire::kBmError) != 0);
    }
    // And the channel carries on.
    KEXPECT(block::read(device, 0, 8, buffer) == IoStatus::kOk);
}

KTEST(storage, ata_flush_survives_a_vmm_kill) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    disk_pattern::PatternHeader header;
    KSKIP_UNLESS(read_header(*drive->device, header) && (header.flags & disk_pattern::kFlushKillScenario),
                 "needs a disk prepared with disk-pattern --flush-kill (tests/integration/storage_flush_kill.sh)");
    test::write_flush_and_wait_for_kill(*drive->device, header);
    KEXPECT(!"the host never killed the VMM (or a write failed)");
}

// The cross-bus check: another run (over VMBus) wrote the guest region and the host marked it.
KTEST(storage, ata_reads_back_the_guest_pattern) {
    const ata::DriveInfo* drive = ata::drive(0);
    KSKIP_UNLESS(drive, kNoDisk);
    disk_pattern::PatternHeader header;
    KSKIP_UNLESS(read_header(*drive->device, header) && (header.flags & disk_pattern::kGuestRegionWritten),
                 "needs a disk whose guest region an earlier run wrote (disk-pattern mark-written)");
    const uint32_t sizes[] = {8, 256, 1000};
    KEXPECT(read_and_check(*drive->device, header.guest_seed, header.guest_first, header.guest_sectors, sizes, 3));
}

}  // namespace hvkvm::guest
