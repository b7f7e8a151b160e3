#include "drivers/ata.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "arch/x86_64/time.h"
#include "block/driver.h"
#include "drivers/ioapic.h"
#include "hvkvm/abi/ata.h"
#include "hvkvm/abi/devices.h"
#include "kernel/console.h"
#include "kernel/interrupts.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/spinlock.h"
#include "kernel/work/work_queue.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest::ata {
namespace {
namespace wire = abi::ata;

constexpr uint16_t kCommandBlock = abi::kIdeCommandBlockPort;
constexpr uint16_t kControlBlock = abi::kIdeControlBlockPort;
constexpr uint16_t kBusMaster = abi::kIdeBusMasterPort;
constexpr uint32_t kInterruptCpu = 0;            // the boot CPU takes the channel's interrupt
constexpr uint64_t kPollTimeoutNs = 5'000'000'000;
constexpr uint32_t kMaxSectorsPerCommand = 2048;  // 1 MiB, whose segments fit the one-page PRD table
constexpr uint32_t kPrdEntries = abi::kPageSize / sizeof(wire::PrdEntry);
constexpr uint32_t kDwordsPerSector = wire::kSectorSize / 4;
constexpr uint8_t kFailedStatus = wire::kStatusErr | wire::kStatusDf;

uint8_t in_register(uint16_t reg) { return x86::inb(static_cast<uint16_t>(kCommandBlock + reg)); }
void out_register(uint16_t reg, uint8_t value) { x86::outb(static_cast<uint16_t>(kCommandBlock + reg), value); }
uint8_t alternate_status() { return x86::inb(kControlBlock); }
void device_control(uint8_t value) { x86::outb(kControlBlock, value); }
uint8_t bus_master_in(uint16_t reg) { return x86::inb(static_cast<uint16_t>(kBusMaster + reg)); }
void bus_master_out(uint16_t reg, uint8_t value) { x86::outb(static_cast<uint16_t>(kBusMaster + reg), value); }
void bus_master_table(uint32_t physical) { x86::outl(kBusMaster + wire::kBmPrdTable, physical); }

// What a finished command reports to the block layer.
struct Finished {
    block::Command* command = nullptr;
    block::IoStatus status = block::IoStatus::kOk;
    uint32_t detail = 0;  // status << 8 | error
};

class Drive final : public block::Driver {
public:
    void start(block::Command& command) override;
    uint32_t reap(uint32_t queue) override;

    uint8_t index = 0;
    bool present = false;
    DriveInfo info{};
    block::Command* pending = nullptr;  // waiting for the channel (channel lock)
    Finished finished;                  // not yet reaped (channel lock)
};

// The command on the channel. For PIO, the data phase belongs to the work item that moves the
// sectors (one at a time, in order), so `sectors_moved` and the cursor need no lock.
struct Transfer {
    Drive* drive = nullptr;
    block::Command* command = nullptr;  // nullptr while a raw command owns the channel
    bool dma = false;
    bool write = false;
    uint32_t sectors_moved = 0;
    uint32_t segment = 0;  // PIO cursor: segment, and byte offset in it
    uint32_t offset = 0;
};

// What the task-file registers hold since our last write; a write of the same value is skipped.
struct TaskFileCache {
    uint8_t value[wire::kCommandBlockPorts] = {};
    bool known[wire::kCommandBlockPorts] = {};
    void forget() {
        for (bool& k : known) k = false;
    }
};

struct Channel {
    Drive drives[abi::kIdeDevicesPerChannel];
    Mode mode = Mode::kPio;
    bool dma_available = false;
    uint64_t prd_table = 0;  // one page, below 4 GiB
    uint8_t vector = 0;

    SpinLock lock;  // guards everything below and the drives' pending/finished; the hardware is
                    // programmed under it (or by whoever owns the channel's data phase)
    bool busy = false;          // a command (ours or raw) has the channel
    bool raw_waiting = false;   // a raw command waits: block commands queue behind it
    Transfer transfer;
    uint8_t last_status = 0;    // PIO: what the interrupt read
    work::WorkItem pio_work;
    bool pio_step_queued = false;  // the work item is queued and has not started (it must not be queued twice)
    TaskFileCache cache;
    ChannelStats stats{};
} channel;

// --- programming the device -------------------------------------------------------------------

void write_task_register(uint16_t reg, uint8_t value, bool cached) {
    TaskFileCache& cache = channel.cache;
    if (cached && cache.known[reg] && cache.value[reg] == value) {
        ++channel.stats.register_writes_saved;
        return;
    }
    out_register(reg, value);
    cache.value[reg] = value;
    cache.known[reg] = true;
}

bool needs_extended(uint64_t lba, uint32_t sectors) {
    return sectors > wire::kMaxSectorsLba28 || lba + sectors > wire::kLba28Limit;
}

// Selects the drive, writes the address (LBA48: the high bytes first, pushed into the registers'
// previous halves by the low ones) and the command.
void issue(uint8_t drive, uint8_t command, uint64_t lba, uint32_t sectors, bool extended, bool cached) {
    const uint8_t select = static_cast<uint8_t>(wire::kDeviceObsolete | wire::kDeviceLba | (drive ? wire::kDeviceSlave : 0) |
                                                (extended ? 0 : (lba >> 24) & 0x0f));
    write_task_register(wire::kDevice, select, cached);
    if (extended) {
        out_register(wire::kSectorCount, static_cast<uint8_t>(sectors >> 8));
        out_register(wire::kLbaLow, static_cast<uint8_t>(lba >> 24));
        out_register(wire::kLbaMid, static_cast<uint8_t>(lba >> 32));
        out_register(wire::kLbaHigh, static_cast<uint8_t>(lba >> 40));
    }
    // With LBA48 these writes must happen even when unchanged: they push the high bytes.
    write_task_register(wire::kSectorCount, static_cast<uint8_t>(sectors), cached && !extended);
    write_task_register(wire::kLbaLow, static_cast<uint8_t>(lba), cached && !extended);
    write_task_register(wire::kLbaMid, static_cast<uint8_t>(lba >> 8), cached && !extended);
    write_task_register(wire::kLbaHigh, static_cast<uint8_t>(lba >> 16), cached && !extended);
    out_register(wire::kStatusCommand, command);
}

uint8_t transfer_command(bool dma, bool write, bool extended) {
    if (dma) return write ? (extended ? wire::kCommandWriteDmaExt : wire::kCommandWriteDma)
                          : (extended ? wire::kCommandReadDmaExt : wire::kCommandReadDma);
    return write ? (extended ? wire::kCommandWriteSectorsExt : wire::kCommandWriteSectors)
                 : (extended ? wire::kCommandReadSectorsExt : wire::kCommandReadSectors);
}

// Polls the alternate status (no side effects) until BSY clears; false on timeout.
bool wait_not_busy(uint8_t& status) {
    const uint64_t deadline = time::now_ns() + kPollTimeoutNs;
    while ((status = alternate_status()) & wire::kStatusBsy)
        if (time::now_ns() > deadline) return false;
    return true;
}

// DMA needs the PRD table's 32-bit addresses to reach every segment.
bool dma_possible(const block::Command& command) {
    if (channel.mode != Mode::kDma || !channel.dma_available || command.segment_count > kPrdEntries) return false;
    for (uint32_t i = 0; i < command.segment_count; ++i)
        if (command.segments[i].physical + command.segments[i].bytes > (uint64_t{1} << 32)) return false;
    return true;
}

void fill_prd_table(const block::Command& command) {
    auto* table = reinterpret_cast<wire::PrdEntry*>(channel.prd_table);
    for (uint32_t i = 0; i < command.segment_count; ++i) {
        const block::Segment& segment = command.segments[i];
        table[i] = wire::PrdEntry{static_cast<uint32_t>(segment.physical),
                                  static_cast<uint16_t>(segment.bytes == wire::kPrdMaxBytes ? 0 : segment.bytes),
                                  static_cast<uint16_t>(i + 1 == command.segment_count ? wire::kPrdEndOfTable : 0)};
    }
}

// Channel lock held. A second request before the step runs (only a misbehaving device interrupts
// again before its block was moved) is folded into the first.
void queue_pio_step() {
    if (channel.pio_step_queued) return;
    channel.pio_step_queued = true;
    work::queue_on(kInterruptCpu, channel.pio_work);
}

// Starts `command` on the hardware. Channel lock held, channel free.
void begin(Drive& drive, block::Command& command) {
    Channel& c = channel;
    c.busy = true;
    c.transfer = Transfer{&drive, &command, dma_possible(command), command.operation == block::Operation::kWrite};
    if (command.operation == block::Operation::kFlush) {
        write_task_register(wire::kDevice, static_cast<uint8_t>(wire::kDeviceObsolete | wire::kDeviceLba |
                                                                (drive.index ? wire::kDeviceSlave : 0)), true);
        out_register(wire::kStatusCommand, drive.info.lba48 ? wire::kCommandFlushCacheExt : wire::kCommandFlushCache);
        return;
    }
    const bool extended = needs_extended(command.sector, command.sectors);
    const uint8_t code = transfer_command(c.transfer.dma, c.transfer.write, extended);
    if (c.transfer.dma) {
        ++c.stats.dma_commands;
        fill_prd_table(command);
        issue(drive.index, code, command.sector, command.sectors, extended, true);
        bus_master_out(wire::kBmCommand, static_cast<uint8_t>((c.transfer.write ? 0 : wire::kBmToMemory) | wire::kBmStart));
        return;
    }
    ++c.stats.pio_commands;
    issue(drive.index, code, command.sector, command.sectors, extended, true);
    if (c.transfer.write) queue_pio_step();  // no interrupt before the first block of a write
}

// Starts a queued command, the other drive's first. Channel lock held, channel free.
void start_pending(const Drive* just_finished) {
    if (channel.raw_waiting) return;  // the raw command goes first; it starts these when done
    for (uint32_t turn = 0; turn < abi::kIdeDevicesPerChannel; ++turn) {
        Drive& drive = channel.drives[(just_finished ? just_finished->index + 1 + turn : turn) % abi::kIdeDevicesPerChannel];
        if (!drive.pending) continue;
        block::Command* command = drive.pending;
        drive.pending = nullptr;
        begin(drive, *command);
        return;
    }
}

// Ends the channel's command with `status`; returns its drive (to be reaped). Channel lock held.
Drive& finish(uint8_t status) {
    Channel& c = channel;
    Transfer& t = c.transfer;
    if (t.dma) bus_master_out(wire::kBmCommand, 0);  // stop the engine
    Finished result{t.command, block::IoStatus::kOk, 0};
    if (status & kFailedStatus || (!t.dma && t.sectors_moved < t.command->sectors)) {
        const uint8_t error = in_register(wire::kErrorFeature);
        result.status = error & wire::kErrorIdnf ? block::IoStatus::kOutOfRange : block::IoStatus::kDeviceError;
        result.detail = uint32_t{status} << 8 | error;
        if (t.dma) bus_master_out(wire::kBmStatus, wire::kBmError | wire::kBmInterrupt);
        c.cache.forget();  // a device may report the failing address in the task file
    }
    Drive& drive = *t.drive;
    drive.finished = result;
    c.transfer = {};
    c.busy = false;
    start_pending(&drive);
    return drive;
}

// --- PIO data phase (work queue, interrupts on) --------------------------------------------------

void move_sector(Transfer& t) {
    const block::Segment& segment = t.command->segments[t.segment];
    auto* at = reinterpret_cast<uint8_t*>(segment.physical) + t.offset;
    const auto data_port = static_cast<uint16_t>(kCommandBlock + wire::kData);
    if (t.write) x86::outsl(data_port, at, kDwordsPerSector);
    else x86::insl(data_port, at, kDwordsPerSector);
    t.offset += wire::kSectorSize;
    if (t.offset == segment.bytes) ++t.segment, t.offset = 0;
    ++t.sectors_moved;
}

// One step of a PIO command, after its interrupt (or, for a write's first block, after DRQ):
// move the block the device asks for, or end the command.
void pio_step(work::WorkItem&) {
    Channel& c = channel;
    Transfer& t = c.transfer;
    uint8_t status;
    {
        IrqSpinLockGuard guard(c.lock);
        c.pio_step_queued = false;
        status = c.last_status;
        if (!c.transfer.command || c.transfer.dma) return;  // no PIO command in progress (a stray request)
    }
    if (t.write && t.sectors_moved == 0 && !wait_not_busy(status)) status = wire::kStatusErr;
    const uint32_t total = t.command->sectors;
    const bool more = t.sectors_moved < total;
    if (!(status & kFailedStatus) && more && (status & wire::kStatusDrq)) {
        move_sector(t);
        if (t.write || t.sectors_moved < total) return;  // the device interrupts for the next step
    }
    Drive* done;
    {
        IrqSpinLockGuard guard(c.lock);
        done = &finish(status);
    }
    platform::InterruptsDisabled no_interrupts;
    block::reap_after_interrupt(*done->info.device, 0);
}

// --- interrupt ------------------------------------------------------------------------------------

// Reading the status register acknowledges the device. A DMA or flush command ends here; a PIO
// block is handed to the work queue, which moves it with interrupts on.
void on_interrupt(void*) {
    Channel& c = channel;
    Drive* reap_now = nullptr;
    Drive* counted = nullptr;
    {
        SpinLockGuard guard(c.lock);  // interrupts are off in a handler
        ++c.stats.interrupts;
        const uint8_t status = in_register(wire::kStatusCommand);
        if (!c.busy || !c.transfer.command || (status & wire::kStatusBsy)) {
            ++c.stats.stray_interrupts;
            return;
        }
        if (c.transfer.dma || c.transfer.command->operation == block::Operation::kFlush) {
            reap_now = &finish(status);
        } else {
            c.last_status = status;
            counted = c.transfer.drive;
            queue_pio_step();
        }
    }
    if (reap_now) block::interrupt(*reap_now->info.device, 0);
    if (counted) block::count_interrupt(*counted->info.device);
}

// --- block-layer entry points -------------------------------------------------------------------

void Drive::start(block::Command& command) {
    IrqSpinLockGuard guard(channel.lock);
    if (channel.busy || channel.raw_waiting) {
        pending = &command;  // the block layer gives a drive one command at a time
        return;
    }
    begin(*this, command);
}

uint32_t Drive::reap(uint32_t) {
    Finished done;
    {
        IrqSpinLockGuard guard(channel.lock);
        done = finished;
        finished = Finished{};
    }
    if (!done.command) return 0;
    block::complete(*done.command, done.status, done.detail);
    return 1;
}

// --- polled commands: probing, diagnostics ------------------------------------------------------

// Runs `command` by polling; the caller owns the channel and has set nIEN.
RawResult execute_polled(uint8_t drive, const RawCommand& command) {
    RawResult result{};
    channel.cache.forget();
    if (command.dma) {
        bus_master_table(command.prd_table);
        bus_master_out(wire::kBmStatus, wire::kBmError | wire::kBmInterrupt);
    }
    out_register(wire::kErrorFeature, command.features);
    issue(drive, command.command, command.lba, command.sectors, command.extended, false);
    if (command.dma)
        bus_master_out(wire::kBmCommand, static_cast<uint8_t>((command.write ? 0 : wire::kBmToMemory) | wire::kBmStart));
    uint8_t status = 0;
    auto* at = static_cast<uint8_t*>(command.buffer);
    const uint32_t blocks = command.dma || !at ? 0 : (command.sectors ? command.sectors : (command.extended ? 65536 : 256));
    for (uint32_t i = 0; i < blocks; ++i, at += wire::kSectorSize) {
        if (!wait_not_busy(status)) return result;
        if ((status & kFailedStatus) || !(status & wire::kStatusDrq)) break;
        const auto data_port = static_cast<uint16_t>(kCommandBlock + wire::kData);
        if (command.write) x86::outsl(data_port, at, kDwordsPerSector);
        else x86::insl(data_port, at, kDwordsPerSector);
    }
    result.completed = wait_not_busy(status);
    result.status = status;
    result.error = in_register(wire::kErrorFeature);
    if (command.dma) {
        result.bus_master_status = bus_master_in(wire::kBmStatus);
        bus_master_out(wire::kBmCommand, 0);
        bus_master_out(wire::kBmStatus, wire::kBmError | wire::kBmInterrupt);
        bus_master_table(static_cast<uint32_t>(channel.prd_table));
    }
    in_register(wire::kStatusCommand);  // acknowledge
    return result;
}

void copy_ata_string(char* destination, const uint16_t* words, uint32_t characters) {
    for (uint32_t i = 0; i < characters; i += 2) {
        destination[i] = static_cast<char>(words[i / 2] >> 8);
        destination[i + 1] = static_cast<char>(words[i / 2] & 0xff);
    }
    uint32_t length = characters;
    while (length > 0 && destination[length - 1] == ' ') --length;
    destination[length] = '\0';
}

// Selects the drive and asks for its IDENTIFY data; false if nobody answers.
bool identify(Drive& drive) {
    out_register(wire::kDevice, static_cast<uint8_t>(wire::kDeviceObsolete | (drive.index ? wire::kDeviceSlave : 0)));
    const uint8_t status = alternate_status();
    if (status == 0 || status == 0xff) return false;  // no device (a lone master's slave reads 0)
    out_register(wire::kSectorCount, 0x55);
    out_register(wire::kLbaLow, 0xaa);
    if (in_register(wire::kSectorCount) != 0x55 || in_register(wire::kLbaLow) != 0xaa) return false;
    alignas(8) static uint16_t words[wire::kIdentifyWords];
    RawCommand command{};
    command.command = wire::kCommandIdentifyDevice;
    command.sectors = 1;
    command.buffer = words;
    const RawResult result = execute_polled(drive.index, command);
    if (!result.completed || (result.status & kFailedStatus)) return false;
    DriveInfo& info = drive.info;
    info.lba48 = words[wire::kIdCommandSets2] & wire::kIdLba48;
    info.sectors = info.lba48 ? (uint64_t{words[103]} << 48 | uint64_t{words[102]} << 32 | uint64_t{words[101]} << 16 | words[100])
                              : (uint64_t{words[61]} << 16 | words[60]);
    copy_ata_string(info.model, &words[wire::kIdModelNumber], wire::kIdModelChars);
    copy_ata_string(info.serial, &words[wire::kIdSerialNumber], wire::kIdSerialChars);
    return info.sectors > 0;
}

// The fastest mode the drive offers of the kind asked for (SET FEATURES, set transfer mode).
bool select_transfer_mode(Drive& drive, Mode mode) {
    RawCommand command{};
    command.command = wire::kCommandSetFeatures;
    command.features = wire::kFeatureSetTransferMode;
    command.sectors = mode == Mode::kDma ? wire::kTransferModeUltraDma | 5 : wire::kTransferModePioFlowControl | 4;
    const RawResult result = execute_polled(drive.index, command);
    return result.completed && !(result.status & kFailedStatus);
}

bool register_drive(Drive& drive) {
    static const char* const kNames[] = {"ata0", "ata1"};
    DriveInfo& info = drive.info;
    info.name = kNames[drive.index];
    if (!info.lba48 && info.sectors >= wire::kLba28Limit) info.sectors = wire::kLba28Limit - 1;
    block::Limits limits;
    limits.max_sectors = info.lba48 ? kMaxSectorsPerCommand : wire::kMaxSectorsLba28;
    limits.max_segments = kPrdEntries;
    limits.max_segment_bytes = wire::kPrdMaxBytes;
    limits.segment_boundary = wire::kPrdMaxBytes;  // PIIX: a PRD buffer does not cross 64 KiB
    limits.queue_depth = 1;
    limits.hardware_queues = 1;
    info.device = block::register_device(info.name, info.sectors, false, limits, drive);
    return info.device != nullptr;
}

bool set_up_dma() {
    channel.dma_available = bus_master_in(wire::kBmStatus) != 0xff;
    if (!channel.dma_available) return false;
    const uint64_t page = mm::allocate_pages(0);
    if (!page || page >= (uint64_t{1} << 32)) {
        if (page) mm::free_pages(page, 0);
        channel.dma_available = false;
        return false;
    }
    channel.prd_table = page;
    bus_master_table(static_cast<uint32_t>(page));
    bus_master_out(wire::kBmStatus, wire::kBmDrive0Dma | wire::kBmDrive1Dma | wire::kBmError | wire::kBmInterrupt);
    return true;
}

bool set_up_interrupt() {
    channel.vector = interrupts::claim_vector(on_interrupt, nullptr, "ata");
    return channel.vector && ioapic::route(abi::kIdeInterruptPin, channel.vector, kInterruptCpu, ioapic::Trigger::kEdge);
}

}  // namespace

const char* mode_name(Mode mode) { return mode == Mode::kDma ? "DMA" : "PIO"; }

uint32_t probe(Mode mode) {
    if (in_register(wire::kStatusCommand) == 0xff && alternate_status() == 0xff) return 0;  // floating bus
    device_control(wire::kControlNien);  // polled until the interrupt is routed
    channel.pio_work.function = pio_step;
    uint32_t found = 0;
    for (uint8_t i = 0; i < abi::kIdeDevicesPerChannel; ++i) {
        Drive& drive = channel.drives[i];
        drive.index = i;
        drive.present = identify(drive);
        found += drive.present;
    }
    if (found == 0) return 0;
    const bool dma = set_up_dma();  // even in PIO mode: set_mode() may switch later
    channel.mode = mode == Mode::kDma && dma ? Mode::kDma : Mode::kPio;
    if (!set_up_interrupt()) {
        kprint("ata: no interrupt vector for the IDE channel: drives not registered\n");
        return 0;
    }
    uint32_t registered = 0;
    for (Drive& drive : channel.drives) {
        if (!drive.present) continue;
        drive.info.mode = channel.mode;
        if (!select_transfer_mode(drive, channel.mode) || !register_drive(drive)) {
            kprint("ata%u: set-up failed: not registered\n", drive.index);
            drive.present = false;
            continue;
        }
        ++registered;
        kprint("%s: %s \"%s\" serial \"%s\", %lu MiB (%lu sectors), %s, %s\n", drive.info.name,
               drive.index ? "slave" : "master", drive.info.model, drive.info.serial, drive.info.sectors >> 11,
               drive.info.sectors, drive.info.lba48 ? "LBA48" : "LBA28", mode_name(channel.mode));
    }
    in_register(wire::kStatusCommand);
    device_control(0);  // interrupts on
    return registered;
}

bool set_mode(Mode mode) {
    if (mode == Mode::kDma && !channel.dma_available) return false;
    IrqSpinLockGuard guard(channel.lock);
    channel.mode = mode;
    for (Drive& drive : channel.drives) drive.info.mode = mode;
    return true;
}

Mode mode() {
    IrqSpinLockGuard guard(channel.lock);
    return channel.mode;
}

const DriveInfo* drive(uint32_t index) {
    if (index >= abi::kIdeDevicesPerChannel || !channel.drives[index].present) return nullptr;
    return &channel.drives[index].info;
}

RawResult execute_raw(uint32_t drive_index, const RawCommand& command) {
    if (drive_index >= abi::kIdeDevicesPerChannel || !channel.drives[drive_index].present) return {};
    // Take the channel once its command ends; block commands queue behind us meanwhile.
    const uint64_t deadline = time::now_ns() + kPollTimeoutNs;
    for (;;) {
        {
            IrqSpinLockGuard guard(channel.lock);
            if (!channel.busy) {
                channel.busy = true;
                channel.raw_waiting = false;
                break;
            }
            channel.raw_waiting = true;
        }
        if (time::now_ns() > deadline) {
            IrqSpinLockGuard guard(channel.lock);
            channel.raw_waiting = false;
            start_pending(nullptr);
            return {};
        }
        sched::sleep_ns(100'000);
    }
    device_control(wire::kControlNien);
    const RawResult result = execute_polled(static_cast<uint8_t>(drive_index), command);
    device_control(0);
    IrqSpinLockGuard guard(channel.lock);
    channel.busy = false;
    start_pending(nullptr);
    return result;
}

ChannelStats stats() {
    IrqSpinLockGuard guard(channel.lock);
    return channel.stats;
}

}  // namespace hvkvm::guest::ata
