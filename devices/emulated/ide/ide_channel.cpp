#include "ide_channel.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "hvkvm/abi/ata.h"

namespace hvkvm::devices::ide {
namespace ata = abi::ata;
namespace {

constexpr uint32_t kSector = ata::kSectorSize;
constexpr uint32_t kBufferSectors = IdeChannel::kBufferBytes / kSector;

// The status a device shows in each situation.
constexpr uint8_t kBusy = ata::kStatusBsy;
constexpr uint8_t kReady = ata::kStatusDrdy;
constexpr uint8_t kDataRequest = ata::kStatusDrdy | ata::kStatusDrq;
constexpr uint8_t kFailed = ata::kStatusDrdy | ata::kStatusErr;
constexpr uint8_t kFaulted = ata::kStatusDrdy | ata::kStatusDf | ata::kStatusErr;
constexpr uint8_t kDiagnosticsPassed = 0x01;  // the error register after a reset

constexpr uint8_t kDriveDmaCapable = ata::kBmDrive0Dma | ata::kBmDrive1Dma;
constexpr uint8_t kWriteOneToClear = ata::kBmError | ata::kBmInterrupt;

std::byte* allocate_buffer() {
    void* memory = std::aligned_alloc(4096, IdeChannel::kBufferBytes);
    if (!memory) throw std::bad_alloc();
    return static_cast<std::byte*>(memory);
}

WriteMode write_mode_of(const DriveSettings& settings) {
    return settings.write_cache ? WriteMode::kCached : WriteMode::kWriteThrough;
}

// SET FEATURES / set transfer mode: the modes IDENTIFY offers.
bool select_transfer_mode(DriveSettings& settings, uint8_t mode) {
    const uint8_t kind = mode & 0xf8;
    const auto number = static_cast<int8_t>(mode & 0x07);
    if (kind == ata::kTransferModePioDefault) return number <= 1;
    if (kind == ata::kTransferModePioFlowControl) return number <= kMaxPioMode;
    if (kind == ata::kTransferModeMultiwordDma && number <= kMaxMultiwordDmaMode) {
        settings.multiword_dma_mode = number;
        settings.ultra_dma_mode = -1;
        return true;
    }
    if (kind == ata::kTransferModeUltraDma && number <= kMaxUltraDmaMode) {
        settings.ultra_dma_mode = number;
        settings.multiword_dma_mode = -1;
        return true;
    }
    return false;
}

// Walks a PRD table's buffers, copying between them and the bounce buffer.
class BufferCursor {
public:
    explicit BufferCursor(const std::vector<std::span<std::byte>>& buffers) : buffers_(buffers) {}

    void scatter(std::span<const std::byte> from) {
        walk(from.size(), [&](std::span<std::byte> to, size_t done) { std::memcpy(to.data(), from.data() + done, to.size()); });
    }
    void gather(std::span<std::byte> to) {
        walk(to.size(), [&](std::span<std::byte> from, size_t done) { std::memcpy(to.data() + done, from.data(), from.size()); });
    }

private:
    // The caller never asks for more than the buffers hold (the table's length was checked).
    template <typename Copy>
    void walk(size_t bytes, Copy copy) {
        for (size_t done = 0; done < bytes;) {
            const std::span<std::byte> buffer = buffers_[index_];
            const size_t n = std::min(bytes - done, buffer.size() - offset_);
            copy(buffer.subspan(offset_, n), done);
            done += n;
            offset_ += n;
            if (offset_ == buffer.size()) ++index_, offset_ = 0;
        }
    }

    const std::vector<std::span<std::byte>>& buffers_;
    size_t index_ = 0;
    size_t offset_ = 0;
};

}  // namespace

IdeChannel::IdeChannel(std::array<Disk*, 2> drives, const DmaMemory& memory, InterruptLine& line, JobSignal& signal,
                       ChannelEvents& events)
    : disks_(drives), memory_(memory), line_(line), signal_(signal), events_(events), buffer_(allocate_buffer(), std::free) {
    reset();
}

IdeChannel::~IdeChannel() = default;

// --- registers ----------------------------------------------------------------------------------

uint8_t IdeChannel::selected_index() const { return (task_file_.device & ata::kDeviceSlave) ? 1 : 0; }

// An absent device (the slave of a lone master) reads as 0: no BSY, no DRDY.
uint8_t IdeChannel::status_of_selected() const {
    const uint8_t index = selected_index();
    return disks_[index] ? drives_[index].status : 0;
}

void IdeChannel::read_command_block(uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (offset == ata::kData) return move_data(data, {});
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_register(static_cast<uint16_t>(offset + i));
}

void IdeChannel::write_command_block(uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    if (offset == ata::kData) return move_data({}, data);
    for (size_t i = 0; i < data.size(); ++i) write_register(static_cast<uint16_t>(offset + i), data[i]);
}

// Reading status would lower a level INTRQ; the line is an edge (ISA IRQ 14), so there is
// nothing to lower.
uint8_t IdeChannel::read_register(uint16_t offset) const {
    const bool hob = task_file_.control & ata::kControlHob;
    switch (offset) {
    case ata::kErrorFeature: return disks_[selected_index()] ? drives_[selected_index()].error : 0;
    case ata::kSectorCount: return task_file_.sector_count[hob];
    case ata::kLbaLow: return task_file_.lba_low[hob];
    case ata::kLbaMid: return task_file_.lba_mid[hob];
    case ata::kLbaHigh: return task_file_.lba_high[hob];
    case ata::kDevice: return task_file_.device;
    case ata::kStatusCommand: return status_of_selected();
    default: return 0xff;
    }
}

// ATA forbids writing the task file while BSY or DRQ: such writes are dropped (and counted), so a
// command in progress can neither be re-addressed nor overtaken.
void IdeChannel::write_register(uint16_t offset, uint8_t value) {
    task_file_.control &= ~ata::kControlHob;
    if (phase_ != Phase::kIdle) {
        ++stats_.ignored_writes;
        return;
    }
    const auto latch = [value](uint8_t(&reg)[2]) {
        reg[1] = reg[0];
        reg[0] = value;
    };
    switch (offset) {
    case ata::kErrorFeature: latch(task_file_.features); return;
    case ata::kSectorCount: latch(task_file_.sector_count); return;
    case ata::kLbaLow: latch(task_file_.lba_low); return;
    case ata::kLbaMid: latch(task_file_.lba_mid); return;
    case ata::kLbaHigh: latch(task_file_.lba_high); return;
    case ata::kDevice: task_file_.device = value; return;
    case ata::kStatusCommand: execute(value); return;
    default: return;
    }
}

void IdeChannel::read_control_block(std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    std::fill(data.begin(), data.end(), status_of_selected());
}

void IdeChannel::write_control_block(std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    const bool was_in_reset = task_file_.control & ata::kControlSrst;
    task_file_.control = data[0] & (ata::kControlNien | ata::kControlSrst | ata::kControlHob);
    const bool in_reset = task_file_.control & ata::kControlSrst;
    if (in_reset && !was_in_reset) assert_reset();
    if (!in_reset && was_in_reset) release_reset();
}

void IdeChannel::read_bus_master(uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_bus_master_byte(static_cast<uint16_t>(offset + i));
}

void IdeChannel::write_bus_master(uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < data.size(); ++i) write_bus_master_byte(static_cast<uint16_t>(offset + i), data[i]);
}

uint8_t IdeChannel::read_bus_master_byte(uint16_t offset) const {
    switch (offset) {
    case ata::kBmCommand: return bus_master_.command;
    case ata::kBmStatus: return bus_master_.status;
    case ata::kBmPrdTable:
    case ata::kBmPrdTable + 1:
    case ata::kBmPrdTable + 2:
    case ata::kBmPrdTable + 3: return static_cast<uint8_t>(bus_master_.prd_table >> (8 * (offset - ata::kBmPrdTable)));
    default: return 0;  // reserved
    }
}

void IdeChannel::write_bus_master_byte(uint16_t offset, uint8_t value) {
    switch (offset) {
    case ata::kBmCommand: {
        const bool was_started = bus_master_.command & ata::kBmStart;
        bus_master_.command = value & (ata::kBmStart | ata::kBmToMemory);
        if (!(value & ata::kBmStart)) {
            // Stopping the engine: a transfer already handed to the worker still completes.
            bus_master_.status &= ~ata::kBmActive;
            return;
        }
        if (was_started) return;
        bus_master_.status |= ata::kBmActive;
        if (phase_ == Phase::kDmaWait) start_dma_job();
        return;
    }
    case ata::kBmStatus:
        bus_master_.status = static_cast<uint8_t>((bus_master_.status & ~kDriveDmaCapable) | (value & kDriveDmaCapable));
        bus_master_.status &= static_cast<uint8_t>(~(value & kWriteOneToClear));
        return;
    case ata::kBmPrdTable:
    case ata::kBmPrdTable + 1:
    case ata::kBmPrdTable + 2:
    case ata::kBmPrdTable + 3: {
        const uint32_t shift = 8 * (offset - ata::kBmPrdTable);
        bus_master_.prd_table = (bus_master_.prd_table & ~(0xffu << shift)) | (uint32_t{value} << shift);
        bus_master_.prd_table &= ~3u;  // bits 1:0 are reserved: the table is dword aligned
        return;
    }
    default: return;
    }
}

// --- commands -----------------------------------------------------------------------------------

void IdeChannel::execute(uint8_t command) {
    const uint8_t index = selected_index();
    if (!disks_[index]) return;  // nobody there to take it
    ++stats_.commands;
    drives_[index].error = 0;
    switch (command) {
    case ata::kCommandIdentifyDevice: return identify();
    case ata::kCommandReadSectors: return start_pio(false, false);
    case ata::kCommandReadSectorsExt: return start_pio(false, true);
    case ata::kCommandWriteSectors: return start_pio(true, false);
    case ata::kCommandWriteSectorsExt: return start_pio(true, true);
    case ata::kCommandReadDma: return start_dma(false, false);
    case ata::kCommandReadDmaExt: return start_dma(false, true);
    case ata::kCommandWriteDma: return start_dma(true, false);
    case ata::kCommandWriteDmaExt: return start_dma(true, true);
    case ata::kCommandFlushCache:
    case ata::kCommandFlushCacheExt:
        phase_ = Phase::kWorking;
        drives_[index].status = kBusy;
        return queue_job(Job{.kind = JobKind::kFlush, .drive = index});
    case ata::kCommandSetFeatures: return set_features();
    default:
        events_.unsupported_command(command);
        return fail(index, kFailed, ata::kErrorAbrt);
    }
}

// The command's LBA and sector count from the task file (a count of 0 is the maximum); false for
// CHS addressing, which this controller does not offer.
bool IdeChannel::address_of(bool extended, Address& address) const {
    const TaskFile& t = task_file_;
    if (!(t.device & ata::kDeviceLba)) return false;
    if (extended) {
        address.lba = uint64_t{t.lba_low[0]} | uint64_t{t.lba_mid[0]} << 8 | uint64_t{t.lba_high[0]} << 16 |
                      uint64_t{t.lba_low[1]} << 24 | uint64_t{t.lba_mid[1]} << 32 | uint64_t{t.lba_high[1]} << 40;
        address.sectors = uint32_t{t.sector_count[0]} | uint32_t{t.sector_count[1]} << 8;
        if (address.sectors == 0) address.sectors = ata::kMaxSectorsLba48;
    } else {
        address.lba = uint64_t{t.lba_low[0]} | uint64_t{t.lba_mid[0]} << 8 | uint64_t{t.lba_high[0]} << 16 |
                      uint64_t{t.device & 0x0fu} << 24;
        address.sectors = t.sector_count[0] ? t.sector_count[0] : ata::kMaxSectorsLba28;
    }
    return true;
}

// Address, range and read-only checks shared by PIO and DMA: false after failing the command.
bool IdeChannel::accept_transfer(bool write, bool extended, Address& address) {
    const uint8_t index = selected_index();
    const Disk& disk = *disks_[index];
    if (!address_of(extended, address)) {
        fail(index, kFailed, ata::kErrorAbrt);
        return false;
    }
    if (address.lba + address.sectors > disk.sectors()) {  // no overflow: lba < 2^48, sectors <= 2^16
        fail(index, kFailed, ata::kErrorIdnf);
        return false;
    }
    if (write && disk.read_only()) {
        fail(index, kFailed, ata::kErrorAbrt);
        return false;
    }
    return true;
}

void IdeChannel::start_pio(bool write, bool extended) {
    Address address{};
    if (!accept_transfer(write, extended, address)) return;
    const uint8_t index = selected_index();
    transfer_ = Transfer{.drive = index,
                         .write = write,
                         .chunk_lba = address.lba,
                         .chunk_sectors = 0,
                         .sectors_after_chunk = address.sectors,
                         .position = 0,
                         .write_mode = write_mode_of(drives_[index].settings)};
    next_chunk();  // ATA: no interrupt before the first block of a PIO write
}

// The next buffer-full of the PIO transfer: a read fetches it on the worker, a write waits for
// the guest to fill it.
void IdeChannel::next_chunk() {
    Transfer& t = transfer_;
    t.chunk_lba += t.chunk_sectors;
    t.chunk_sectors = std::min(t.sectors_after_chunk, kBufferSectors);
    t.sectors_after_chunk -= t.chunk_sectors;
    t.position = 0;
    if (t.write) {
        phase_ = Phase::kDataOut;
        drives_[t.drive].status = kDataRequest;
        return;
    }
    phase_ = Phase::kWorking;
    drives_[t.drive].status = kBusy;
    queue_job(Job{.kind = JobKind::kPioRead, .drive = t.drive, .lba = t.chunk_lba, .sectors = t.chunk_sectors});
}

void IdeChannel::start_dma(bool write, bool extended) {
    Address address{};
    if (!accept_transfer(write, extended, address)) return;
    const uint8_t index = selected_index();
    transfer_ = Transfer{.drive = index,
                         .write = write,
                         .chunk_lba = address.lba,
                         .chunk_sectors = address.sectors,
                         .sectors_after_chunk = 0,
                         .position = 0,
                         .write_mode = write_mode_of(drives_[index].settings)};
    phase_ = Phase::kDmaWait;
    drives_[index].status = kBusy;
    if (bus_master_.command & ata::kBmStart) start_dma_job();
}

// Both halves are there (the DMA command and the engine's start bit): the worker takes it. The
// PRD table is read by the worker, when the transfer runs, as a real engine reads it.
void IdeChannel::start_dma_job() {
    const Transfer& t = transfer_;
    const bool engine_to_memory = bus_master_.command & ata::kBmToMemory;
    phase_ = Phase::kWorking;
    queue_job(Job{.kind = JobKind::kDma,
                  .drive = t.drive,
                  .to_memory = !t.write,
                  .direction_mismatch = engine_to_memory == t.write,
                  .lba = t.chunk_lba,
                  .sectors = t.chunk_sectors,
                  .prd_table = bus_master_.prd_table,
                  .write_mode = t.write_mode});
}

void IdeChannel::identify() {
    const uint8_t index = selected_index();
    const Disk& disk = *disks_[index];
    const IdentifyData words = build_identify(disk.id(), disk.sectors(), drives_[index].settings);
    auto* bytes = reinterpret_cast<uint8_t*>(buffer_.get());
    for (size_t i = 0; i < words.size(); ++i) {
        bytes[2 * i] = static_cast<uint8_t>(words[i]);
        bytes[2 * i + 1] = static_cast<uint8_t>(words[i] >> 8);
    }
    transfer_ = Transfer{.drive = index, .write = false, .chunk_lba = 0, .chunk_sectors = 1, .sectors_after_chunk = 0};
    phase_ = Phase::kDataIn;
    drives_[index].status = kDataRequest;
    raise_interrupt();
}

void IdeChannel::set_features() {
    const uint8_t index = selected_index();
    DriveSettings& settings = drives_[index].settings;
    switch (task_file_.features[0]) {
    case ata::kFeatureEnableWriteCache: settings.write_cache = true; return complete(index);
    case ata::kFeatureDisableWriteCache: settings.write_cache = false; return complete(index);
    case ata::kFeatureSetTransferMode:
        if (select_transfer_mode(settings, task_file_.sector_count[0])) return complete(index);
        break;
    default: break;
    }
    fail(index, kFailed, ata::kErrorAbrt);
}

// --- PIO data ---------------------------------------------------------------------------------

// One data-port access: `read_into` for a read, `write_from` for a write. It moves bytes up to
// the end of the current DRQ block (one sector); the rest of an access that straddles the block's
// end reads as all-ones or is dropped.
void IdeChannel::move_data(std::span<uint8_t> read_into, std::span<const uint8_t> write_from) {
    const bool reading = !read_into.empty();
    std::fill(read_into.begin(), read_into.end(), uint8_t{0xff});
    if (phase_ != (reading ? Phase::kDataIn : Phase::kDataOut)) {
        ++stats_.data_without_drq;
        return;
    }
    Transfer& t = transfer_;
    const uint32_t block_end = (t.position / kSector + 1) * kSector;
    const size_t size = reading ? read_into.size() : write_from.size();
    const size_t n = std::min<size_t>(size, block_end - t.position);
    std::byte* at = buffer_.get() + t.position;
    if (reading) std::memcpy(read_into.data(), at, n);
    else std::memcpy(at, write_from.data(), n);
    t.position += static_cast<uint32_t>(n);
    if (t.position == block_end) end_of_block();
}

// A whole sector has crossed the data port. ATA raises an interrupt whenever the device is ready
// for the next block (and at the end of a write), not after the last block of a read.
void IdeChannel::end_of_block() {
    ++stats_.pio_sectors;
    Transfer& t = transfer_;
    const bool chunk_done = t.position == t.chunk_sectors * kSector;
    if (!chunk_done) return raise_interrupt();
    if (t.write) {
        phase_ = Phase::kWorking;
        drives_[t.drive].status = kBusy;
        return queue_job(Job{.kind = JobKind::kPioWrite,
                             .drive = t.drive,
                             .lba = t.chunk_lba,
                             .sectors = t.chunk_sectors,
                             .write_mode = t.write_mode});
    }
    if (t.sectors_after_chunk == 0) {
        drives_[t.drive].status = kReady;
        phase_ = Phase::kIdle;
        return;
    }
    next_chunk();
}

// --- jobs ---------------------------------------------------------------------------------------

void IdeChannel::queue_job(const Job& job) {
    pending_job_ = job;
    pending_job_.generation = generation_;
    signal_.job_ready();
}

bool IdeChannel::run_job() {
    Job job;
    {
        std::lock_guard lock(mutex_);
        if (pending_job_.kind == JobKind::kNone) return false;
        job = std::exchange(pending_job_, Job{});
        job_running_ = true;
    }
    const JobResult result = execute_job(job);
    std::lock_guard lock(mutex_);
    job_running_ = false;
    if (job.generation == generation_) finish_job(job, result);
    else if (reset_waits_for_job_) finish_reset();
    return true;
}

IdeChannel::JobResult IdeChannel::execute_job(const Job& job) {
    Disk& disk = *disks_[job.drive];
    const std::span<std::byte> bytes(buffer_.get(), size_t{job.sectors} * kSector);
    switch (job.kind) {
    case JobKind::kPioRead: return JobResult{.host_error = disk.read(job.lba, bytes)};
    case JobKind::kPioWrite: return JobResult{.host_error = disk.write(job.lba, bytes, job.write_mode)};
    case JobKind::kFlush: return JobResult{.host_error = disk.flush()};
    case JobKind::kDma: return execute_dma(job);
    case JobKind::kNone: break;
    }
    return {};
}

// The PRD table is read and checked before any data moves; then the data goes through the bounce
// buffer a buffer-full at a time (aligned for O_DIRECT, whatever the guest's buffers are).
IdeChannel::JobResult IdeChannel::execute_dma(const Job& job) {
    if (job.direction_mismatch) return JobResult{.direction_mismatch = true};
    const uint64_t total = uint64_t{job.sectors} * kSector;
    const PrdBuffers prd = read_prd_table(memory_, job.prd_table, total);
    if (prd.problem != PrdProblem::kNone) return JobResult{.prd = prd.problem};
    Disk& disk = *disks_[job.drive];
    BufferCursor cursor(prd.buffers);
    for (uint64_t done = 0; done < total;) {
        const std::span<std::byte> bounce(buffer_.get(), std::min<uint64_t>(total - done, kBufferBytes));
        const uint64_t sector = job.lba + done / kSector;
        if (job.to_memory) {
            if (const int error = disk.read(sector, bounce)) return JobResult{.host_error = error};
            cursor.scatter(bounce);
        } else {
            cursor.gather(bounce);
            if (const int error = disk.write(sector, bounce, job.write_mode)) return JobResult{.host_error = error};
        }
        done += bounce.size();
    }
    return {};
}

void IdeChannel::finish_job(const Job& job, const JobResult& result) {
    switch (job.kind) {
    case JobKind::kPioRead:
    case JobKind::kPioWrite: return finish_pio_job(job, result);
    case JobKind::kDma: return finish_dma_job(job, result);
    case JobKind::kFlush:
        ++stats_.flushes;
        if (result.host_error) return fail_host_error(job, "flush", result.host_error);
        return complete(job.drive);
    case JobKind::kNone: return;
    }
}

void IdeChannel::finish_pio_job(const Job& job, const JobResult& result) {
    const bool read = job.kind == JobKind::kPioRead;
    if (result.host_error) return fail_host_error(job, read ? "read" : "write", result.host_error);
    if (read) {
        phase_ = Phase::kDataIn;
        drives_[job.drive].status = kDataRequest;
        return raise_interrupt();
    }
    if (transfer_.sectors_after_chunk == 0) return complete(job.drive);
    next_chunk();
    raise_interrupt();  // the block is written: ready for the next
}

void IdeChannel::finish_dma_job(const Job& job, const JobResult& result) {
    bus_master_.status &= ~ata::kBmActive;
    if (result.direction_mismatch || result.prd != PrdProblem::kNone) {
        ++stats_.bus_master_errors;
        bus_master_.status |= ata::kBmError;
        events_.bus_master_error(result.direction_mismatch ? "the engine's direction disagrees with the command"
                                                           : describe(result.prd),
                                 job.prd_table);
        return fail(job.drive, kFailed, ata::kErrorAbrt);
    }
    if (result.host_error) return fail_host_error(job, job.to_memory ? "read" : "write", result.host_error);
    ++stats_.dma_transfers;
    stats_.dma_bytes += uint64_t{job.sectors} * kSector;
    complete(job.drive);
}

// A failed read is an uncorrectable data error to the guest; a failed write or flush a device
// fault with the command aborted.
void IdeChannel::fail_host_error(const Job& job, const char* operation, int error) {
    ++stats_.host_errors;
    events_.host_error(*disks_[job.drive], operation, error);
    const bool read = job.kind == JobKind::kPioRead || (job.kind == JobKind::kDma && job.to_memory);
    if (read) fail(job.drive, kFailed, ata::kErrorUnc);
    else fail(job.drive, kFaulted, ata::kErrorAbrt);
}

void IdeChannel::complete(uint8_t drive) {
    drives_[drive].status = kReady;
    phase_ = Phase::kIdle;
    raise_interrupt();
}

void IdeChannel::fail(uint8_t drive, uint8_t status, uint8_t error) {
    drives_[drive].status = status;
    drives_[drive].error = error;
    phase_ = Phase::kIdle;
    ++stats_.errors;
    raise_interrupt();
}

// nIEN keeps the device from asserting INTRQ, and so the bus-master interrupt bit too.
void IdeChannel::raise_interrupt() {
    if (task_file_.control & ata::kControlNien) return;
    bus_master_.status |= ata::kBmInterrupt;
    ++stats_.interrupts;
    line_.trigger();
}

// --- resets -------------------------------------------------------------------------------------

void IdeChannel::reset() {
    std::lock_guard lock(mutex_);
    for (DriveState& drive : drives_) drive.settings = {};
    bus_master_ = {};
    task_file_.control = 0;
    assert_reset();
    release_reset();
}

// A queued job never runs; a running one finishes on the worker, but its result is dropped.
void IdeChannel::assert_reset() {
    ++generation_;
    pending_job_ = {};
    reset_waits_for_job_ = false;  // until released
    phase_ = Phase::kReset;
    bus_master_.status &= ~ata::kBmActive;
    for (uint8_t i = 0; i < drives_.size(); ++i) drives_[i].status = disks_[i] ? kBusy : 0;
}

// The buffer is the running job's until it ends: the devices stay BSY until then.
void IdeChannel::release_reset() {
    if (job_running_) {
        reset_waits_for_job_ = true;
        return;
    }
    finish_reset();
}

// Both devices ready, with the ATA signature in the task file.
void IdeChannel::finish_reset() {
    reset_waits_for_job_ = false;
    phase_ = Phase::kIdle;
    transfer_ = {};
    for (uint8_t i = 0; i < drives_.size(); ++i) {
        drives_[i].status = disks_[i] ? kReady : 0;
        drives_[i].error = kDiagnosticsPassed;
    }
    const uint8_t control = task_file_.control;
    task_file_ = {};
    task_file_.control = control;
    task_file_.sector_count[0] = 1;
    task_file_.lba_low[0] = 1;
}

ChannelStats IdeChannel::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

}  // namespace hvkvm::devices::ide
