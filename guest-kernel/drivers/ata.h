// Driver for the primary IDE channel (abi/devices.h, abi/ata.h): its master and slave become block
// devices "ata0" and "ata1" (queue depth 1 each; the two share the channel, one command at a
// time). Data moves by PIO (32-bit `rep insl`/`rep outsl` on the data port, one sector per
// interrupt, the data moved by the work queue with interrupts on) or by bus-master DMA (a PRD
// table per command, one interrupt per command, handled entirely in the interrupt handler).
// Commands use 28-bit addressing where it suffices and the EXT forms (LBA48) above; the task-file
// registers the last command left unchanged are not written again, since every write is a VM exit.
//
// Errors reach the block layer's caller with the ATA status and error registers in
// Io::device_error (status << 8 | error): IDNF as kOutOfRange, everything else kDeviceError.
#pragma once

#include <stdint.h>

#include "block/block.h"

namespace hvkvm::guest::ata {

enum class Mode : uint8_t { kPio, kDma };
const char* mode_name(Mode mode);

struct DriveInfo {
    const char* name;        // "ata0" (master) or "ata1" (slave)
    char model[41];
    char serial[21];
    uint64_t sectors;
    bool lba48;
    Mode mode;               // DMA falls back to PIO without a bus-master block
    block::Device* device;
};

// Probes the primary channel (a floating bus, status 0xff, means no controller) and registers a
// block device for each drive that answers IDENTIFY. Boot CPU, after the work queue is up; once.
// Returns the number of drives.
uint32_t probe(Mode mode);
// The drive's description, or nullptr if there is none at `index` (0 master, 1 slave).
const DriveInfo* drive(uint32_t index);
// How the channel moves data from the next command on (tests use both in one run). False if DMA
// is asked for and the controller has no bus-master block.
bool set_mode(Mode mode);
Mode mode();

// Diagnostics and tests: one command issued by polling, with the device's interrupt off, once the
// channel is idle; block-layer commands wait meanwhile. DMA uses the caller's PRD table (a
// physical address), PIO the caller's buffer.
struct RawCommand {
    uint8_t command;
    uint8_t features;
    uint64_t lba;
    uint32_t sectors;       // 1..65536 (the command's count register: 0 means the maximum)
    bool extended;          // the EXT (LBA48) register protocol
    bool dma;
    bool write;
    uint32_t prd_table;     // DMA
    void* buffer;           // PIO: sectors * 512 bytes
};
struct RawResult {
    bool completed;         // false: the device did not finish in time
    uint8_t status;
    uint8_t error;
    uint8_t bus_master_status;
};
RawResult execute_raw(uint32_t drive_index, const RawCommand& command);

struct ChannelStats {
    uint64_t interrupts;        // hardware interrupts taken
    uint64_t stray_interrupts;  // with no command of ours on the channel
    uint64_t pio_commands;
    uint64_t dma_commands;
    uint64_t register_writes_saved;  // task-file writes skipped because the register already held the value
};
ChannelStats stats();

}  // namespace hvkvm::guest::ata
