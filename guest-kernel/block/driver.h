// The block layer's side for drivers. A driver registers a device with its Limits and a Driver;
// the block layer then hands it Commands — Ios from one CPU's queue merged while adjacent, split
// to the device's limits, their buffers translated to physical segments — never more than
// queue_depth at a time per hardware queue, and the driver completes each exactly once.
//
// The same interface serves a queue-depth-1 emulated controller (ATA: one hardware queue, one
// command at a time, interrupt per command) and a deep multi-queue synthetic device (storvsc:
// a hardware queue per VMBus sub-channel, i.e. per CPU; up to 1 MiB per command as page lists;
// completions reaped by polling while busy).
//
// Contexts: start() is called with interrupts disabled, from submission or from a completion
// (possibly in an interrupt handler): it must not block. reap() is called with interrupts
// disabled, by the driver's interrupt handler through block::interrupt() and by polling waiters,
// never twice at once for one queue. set_completion_interrupts() is called with a block-layer
// lock held: it must not call back into the block layer.
#pragma once

#include <stdint.h>

#include "block/block.h"

namespace hvkvm::guest::block {

inline constexpr uint32_t kMaxDevices = 16;
inline constexpr uint32_t kMaxQueueDepth = 64;      // per hardware queue
inline constexpr uint32_t kMaxIosPerCommand = 32;   // Ios (or parts of Ios) merged into one command

struct Limits {
    uint32_t max_sectors = 256;           // per command
    uint32_t max_segments = 128;          // physical segments per command
    uint32_t max_segment_bytes = 65536;   // per segment; at least 4096
    uint64_t segment_boundary = 0;        // no segment crosses a multiple of this (0: none; else >= 4096)
    uint32_t queue_depth = 1;             // 1..kMaxQueueDepth commands in flight per hardware queue
    uint32_t hardware_queues = 1;         // CPU c uses queue c % hardware_queues
    uint64_t poll_ns = 0;                 // how long a waiter polls a busy queue (0: never; reap() is then only called from interrupts)
    bool fua = false;                     // the device takes FUA writes (else they are refused, kInvalid)
    // The segments must form one page list (a VMBus GPA range): only the first may start, and only
    // the last end, inside a page. Ios whose buffers would leave a gap are not merged.
    bool page_list = false;
};

// A physically contiguous piece of a command's data.
struct Segment {
    uint64_t physical;
    uint32_t bytes;  // a multiple of 512
};

struct Command {
    // For the driver.
    Operation operation;
    bool fua;          // a write: durable when it completes
    uint64_t sector;
    uint32_t sectors;  // 0 for a flush
    const Segment* segments;
    uint32_t segment_count;
    uint32_t queue;
    uint32_t tag;      // 0..queue_depth-1, unique among the queue's commands in flight
    void* driver_data; // the driver's, per (queue, tag); kept across uses

    // The block layer's.
    struct Piece {
        Io* io;
        uint32_t sectors;
    };
    Device* device;
    Piece pieces[kMaxIosPerCommand];
    uint32_t piece_count;
    Segment* segment_storage;  // max_segments of them
};

class Driver {
public:
    virtual ~Driver() = default;
    virtual void start(Command& command) = 0;
    // Completes (block::complete) the queue's finished commands; returns how many.
    virtual uint32_t reap(uint32_t queue) = 0;
    // Off while a waiter polls the queue, so that a busy queue raises no interrupts.
    virtual void set_completion_interrupts(uint32_t /*queue*/, bool /*enabled*/) {}
};

// Registers a device. nullptr if the table is full, the
// limits are unusable, or memory runs out. `name` must outlive the device.
Device* register_device(const char* name, uint64_t sectors, bool read_only, const Limits& limits, Driver& driver);

// Removes a device that has nothing in flight or queued (tests' devices); panics otherwise.
void unregister_device(Device& device);

// The driver is done with `command`: kOk, or kDeviceError / kOutOfRange with its detail.
void complete(Command& command, IoStatus status, uint32_t device_error = 0);

// From the driver's interrupt handler, after it acknowledged its device: counts the interrupt and
// reaps the queue.
void interrupt(Device& device, uint32_t queue);
// For a driver whose interrupt handler leaves work to a thread (ATA PIO moves its data there):
// count_interrupt() counts one that completes nothing by itself; reap_after_interrupt() reaps, from
// that thread, completions an interrupt already counted led to.
void count_interrupt(Device& device);
void reap_after_interrupt(Device& device, uint32_t queue);

}  // namespace hvkvm::guest::block
