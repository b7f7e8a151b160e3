// A block device kept in guest RAM, for the block layer's tests and as the I/O benchmark's
// baseline (the block layer's own cost, no exits). Its "hardware" moves the data when a command
// starts and completes the command in one of three ways:
//   kInline  inside start(), as a synchronous device;
//   kTimed   after `latency_ns`, from a timer on the CPU that started it: an interrupt
//            (block::interrupt from the timer's interrupt context) unless the queue's completion
//            interrupts are off, in which case only a poll finds it;
//   kHeld    when release_held() is called: the caller's CPU takes the interrupt, so a test
//            chooses when and where completions arrive.
// Every command it was given is recorded (the last kLogSize), for tests of merging and splitting.
#pragma once

#include <stdint.h>

#include "block/driver.h"

namespace hvkvm::guest::ram_disk {

enum class Completion : uint8_t { kInline, kTimed, kHeld };

struct Options {
    const char* name = "ram0";
    uint64_t sectors = 2048;
    bool read_only = false;
    Completion completion = Completion::kInline;
    uint64_t latency_ns = 0;               // kTimed
    uint64_t failing_sector = ~0ull;       // commands touching it fail with kDeviceError
    block::Limits limits;
};

inline constexpr uint32_t kDeviceErrorDetail = 0xdead;
inline constexpr uint32_t kLogSize = 64;

struct LoggedCommand {
    block::Operation operation;
    uint64_t sector;
    uint32_t sectors;
    uint32_t segments;
    uint32_t pieces;
    uint32_t cpu;  // where it was started
};

class RamDisk;

// nullptr if memory runs out or the block layer refuses the limits.
RamDisk* create(const Options& options);
// Unregisters the block device and frees everything; nothing may be in flight.
void destroy(RamDisk* disk);

block::Device& device(RamDisk& disk);
// The bytes of one sector (the disk is kept in 4 MiB pieces; a sector never straddles two).
uint8_t* sector_data(RamDisk& disk, uint64_t sector);
// kHeld: completes every held command, interrupting on this CPU (or leaving them to a poll while
// the queue's interrupts are off). Returns how many.
uint32_t release_held(RamDisk& disk);
uint32_t held(RamDisk& disk);
// Whether the queue's completion interrupts are on (a waiter polling turns them off).
bool interrupts_enabled(RamDisk& disk, uint32_t queue);

// The commands started so far (the log keeps the last kLogSize).
uint64_t commands_started(RamDisk& disk);
LoggedCommand logged(RamDisk& disk, uint64_t index);  // index < commands_started(), within the last kLogSize

}  // namespace hvkvm::guest::ram_disk
