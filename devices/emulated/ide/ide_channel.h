// One IDE channel (master and slave) with its PIIX-style bus-master engine: the register state
// machine of the emulated controller, independent of KVM so that it is unit-tested on the host
// with a fake guest memory, interrupt line and disks.
//
// Register accesses (vCPU threads) only change registers and move PIO data through the channel's
// buffer. Everything that touches a disk or does DMA is a job, run by the device's worker thread
// (run_job); until it is done the guest reads BSY. One command runs at a time per channel; the
// guest can neither start another nor touch the buffer until it ends, and a software reset in
// between waits for the job (the device stays BSY) and drops its result.
//
// What the controller implements (abi/ata.h): IDENTIFY DEVICE, READ/WRITE SECTORS (EXT) by PIO
// (one sector per DRQ block, an interrupt per block as ATA has it), READ/WRITE DMA (EXT), FLUSH
// CACHE (EXT), SET FEATURES (write cache on/off, transfer mode); every other command ends with
// ABRT. LBA addressing only (CHS commands are aborted). Data-port accesses of 1, 2 or 4 bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string_view>

#include "disk.h"
#include "identify.h"
#include "prd_table.h"

namespace hvkvm::devices::ide {

class InterruptLine {
public:
    virtual ~InterruptLine() = default;
    virtual void trigger() = 0;  // one edge; never blocks
};

// Told (under the channel's lock, so it must not call back) that run_job() has work.
class JobSignal {
public:
    virtual ~JobSignal() = default;
    virtual void job_ready() = 0;
};

// Guest-caused events worth a (rate-limited) log line.
class ChannelEvents {
public:
    virtual ~ChannelEvents() = default;
    virtual void unsupported_command(uint8_t /*command*/) {}
    virtual void bus_master_error(std::string_view /*reason*/, uint64_t /*table_gpa*/) {}
    virtual void host_error(const Disk& /*disk*/, const char* /*operation*/, int /*error*/) {}
};

struct ChannelStats {
    uint64_t commands = 0;            // commands accepted (including those that end in an error)
    uint64_t errors = 0;              // commands ended with ERR
    uint64_t pio_sectors = 0;         // sectors moved through the data port
    uint64_t dma_transfers = 0;       // DMA commands that moved their data
    uint64_t dma_bytes = 0;
    uint64_t flushes = 0;
    uint64_t interrupts = 0;          // edges raised on the line
    uint64_t bus_master_errors = 0;   // unusable PRD tables and direction mismatches
    uint64_t host_errors = 0;         // failed reads, writes and flushes of the image
    uint64_t ignored_writes = 0;      // task-file writes while the channel was busy (the guest's bug)
    uint64_t data_without_drq = 0;    // data-port accesses with no PIO block pending (likewise)
};

class IdeChannel {
public:
    // Bytes moved between the disk and the guest per job: the PIO buffer and the DMA bounce
    // buffer (aligned for O_DIRECT). A longer command runs as several jobs.
    static constexpr uint32_t kBufferBytes = 256 * 1024;

    // `drives[i]` may be null (no device there). Everything passed in outlives the channel.
    IdeChannel(std::array<Disk*, 2> drives, const DmaMemory& memory, InterruptLine& line, JobSignal& signal,
               ChannelEvents& events);
    ~IdeChannel();
    IdeChannel(const IdeChannel&) = delete;
    IdeChannel& operator=(const IdeChannel&) = delete;

    // Register accesses: `offset` within the block; data.size() is 1, 2 or 4.
    void read_command_block(uint16_t offset, std::span<uint8_t> data);
    void write_command_block(uint16_t offset, std::span<const uint8_t> data);
    void read_control_block(std::span<uint8_t> data);          // alternate status
    void write_control_block(std::span<const uint8_t> data);   // device control
    void read_bus_master(uint16_t offset, std::span<uint8_t> data);
    void write_bus_master(uint16_t offset, std::span<const uint8_t> data);

    // Worker thread: runs the pending job, if any; false if there was none.
    bool run_job();
    // Back to the power-on state (a guest reboot); a running job's result is dropped.
    void reset();

    ChannelStats stats() const;

private:
    enum class Phase : uint8_t {
        kIdle,      // ready for a command
        kWorking,   // BSY: a job is queued or running
        kDataIn,    // DRQ: the guest reads a block from the buffer
        kDataOut,   // DRQ: the guest writes a block into the buffer
        kDmaWait,   // BSY: a DMA command waits for the bus-master engine to start
        kReset,     // SRST asserted, or released while a job still runs
    };
    enum class JobKind : uint8_t { kNone, kPioRead, kPioWrite, kDma, kFlush };

    struct Job {
        JobKind kind = JobKind::kNone;
        uint8_t drive = 0;
        bool to_memory = false;  // DMA direction: a read command
        bool direction_mismatch = false;
        uint64_t lba = 0;
        uint32_t sectors = 0;
        uint32_t prd_table = 0;
        WriteMode write_mode = WriteMode::kCached;
        uint64_t generation = 0;
    };
    struct JobResult {
        int host_error = 0;
        PrdProblem prd = PrdProblem::kNone;
        bool direction_mismatch = false;
    };

    // The task file, latched by both devices; [0] current, [1] previous (read with HOB).
    struct TaskFile {
        uint8_t features[2] = {};
        uint8_t sector_count[2] = {};
        uint8_t lba_low[2] = {};
        uint8_t lba_mid[2] = {};
        uint8_t lba_high[2] = {};
        uint8_t device = 0;
        uint8_t control = 0;
    };
    struct DriveState {
        uint8_t status = 0;
        uint8_t error = 0;
        DriveSettings settings;
    };
    // The PIO command in progress: the buffer holds `chunk_sectors` sectors starting at
    // `chunk_lba`; `position` is the next byte the guest moves; `sectors_after_chunk` follow.
    struct Transfer {
        uint8_t drive = 0;
        bool write = false;
        uint64_t chunk_lba = 0;
        uint32_t chunk_sectors = 0;
        uint32_t sectors_after_chunk = 0;
        uint32_t position = 0;
        WriteMode write_mode = WriteMode::kCached;
    };
    struct BusMaster {
        uint8_t command = 0;
        uint8_t status = 0;
        uint32_t prd_table = 0;
    };
    struct Address {
        uint64_t lba;
        uint32_t sectors;
    };

    // All below: mutex_ held.
    uint8_t selected_index() const;
    uint8_t status_of_selected() const;
    uint8_t read_register(uint16_t offset) const;
    void write_register(uint16_t offset, uint8_t value);
    void execute(uint8_t command);
    bool address_of(bool extended, Address& address) const;
    bool accept_transfer(bool write, bool extended, Address& address);
    void start_pio(bool write, bool extended);
    void start_dma(bool write, bool extended);
    void identify();
    void set_features();
    void move_data(std::span<uint8_t> read_into, std::span<const uint8_t> write_from);
    void end_of_block();
    void next_chunk();
    void queue_job(const Job& job);
    void start_dma_job();
    void finish_job(const Job& job, const JobResult& result);
    void finish_pio_job(const Job& job, const JobResult& result);
    void finish_dma_job(const Job& job, const JobResult& result);
    void complete(uint8_t drive);
    void fail(uint8_t drive, uint8_t status, uint8_t error);
    void fail_host_error(const Job& job, const char* operation, int error);
    void raise_interrupt();
    void write_bus_master_byte(uint16_t offset, uint8_t value);
    uint8_t read_bus_master_byte(uint16_t offset) const;
    void assert_reset();
    void release_reset();
    void finish_reset();

    // Worker side, mutex_ not held: the job owns buffer_ while it runs.
    JobResult execute_job(const Job& job);
    JobResult execute_dma(const Job& job);

    const std::array<Disk*, 2> disks_;  // fixed at construction: read without the lock
    const DmaMemory& memory_;
    InterruptLine& line_;
    JobSignal& signal_;
    ChannelEvents& events_;
    std::unique_ptr<std::byte, void (*)(void*)> buffer_;  // kBufferBytes, page aligned

    mutable std::mutex mutex_;  // guards everything below
    std::array<DriveState, 2> drives_;
    TaskFile task_file_;
    Phase phase_ = Phase::kIdle;
    Transfer transfer_;
    BusMaster bus_master_;
    Job pending_job_;           // kind kNone: nothing queued
    bool job_running_ = false;  // the worker has taken a job and not finished it
    bool reset_waits_for_job_ = false;
    uint64_t generation_ = 0;   // bumped by every reset: a job of an older generation is dropped
    ChannelStats stats_;
};

}  // namespace hvkvm::devices::ide
