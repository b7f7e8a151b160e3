// The block layer, as its users see it: block devices (registered by drivers, block/driver.h),
// asynchronous I/O through completion ports, and synchronous helpers on top.
//
// Completion-port style, as Windows NT does I/O completion: a thread submits Ios naming its
// CompletionPort and later waits on the port. The device's interrupt (or a poll) only records
// the result and posts the Io to its port, waking the waiter; everything else a completion
// involves (the Io's on_complete routine, the issuer's bookkeeping) runs in the waiting thread,
// on the CPU it runs on — the submitting CPU, unless the scheduler moved the thread — with no
// worker thread and so no extra context switch between the device and the issuer.
//
// While a waiter has Ios in flight on a device that can be polled, it polls the device's queue
// for a short while (the driver's Limits::poll_ns) with the queue's completion interrupts off
// before it sleeps: a busy queue then completes without an interrupt per request.
//
// Ordering: Ios on one CPU reach the device in submission order (merged where adjacent); Ios of
// different CPUs are not ordered. A flush makes durable the writes that completed before it was
// submitted, not those still in flight (wait for them first).
#pragma once

#include <stdint.h>

#include "kernel/sched/wait_queue.h"
#include "kernel/sync/spinlock.h"
#include "lib/intrusive_list.h"
#include "lib/string_view.h"

namespace hvkvm::guest::block {

inline constexpr uint32_t kSectorSize = 512;

struct Device;
class CompletionPort;

enum class Operation : uint8_t { kRead, kWrite, kFlush };

enum class IoStatus : uint8_t {
    kPending,
    kOk,
    kOutOfRange,   // [sector, sector + sectors) is not on the device
    kReadOnly,     // a write to a device registered read-only (or that the device refused as such)
    kInvalid,      // a read or write of no sectors; a buffer not 512-byte aligned or not mapped;
                   // FUA on a device without it
    kDeviceError,  // the device failed it; device_error holds the driver's detail
};
const char* describe(IoStatus status);

struct Io {
    // Set by the issuer.
    Operation operation = Operation::kRead;
    uint64_t sector = 0;
    uint32_t sectors = 0;                   // 0 for a flush
    bool fua = false;                       // a write durable when it completes (Limits::fua devices)
    void* buffer = nullptr;                 // sectors * 512 bytes, 512-byte aligned, any kernel mapping
    void (*on_complete)(Io& io) = nullptr;  // runs in the waiting thread before wait() returns the Io
    void* context = nullptr;                // the issuer's

    // Results, valid once wait() returned the Io.
    IoStatus status = IoStatus::kPending;
    uint32_t device_error = 0;   // for kDeviceError: the driver's detail (ATA: status << 8 | error)
    uint32_t submit_cpu = 0;
    uint32_t completion_cpu = 0; // where the completion work ran: the waiting thread's CPU
    uint64_t submit_ns = 0;
    uint64_t posted_ns = 0;      // when the interrupt or poll posted it to the port

    // The block layer's, while the Io is in flight.
    ListNode queue_link;
    ListNode port_link;
    Device* device = nullptr;
    CompletionPort* port = nullptr;
    uint32_t dispatched_sectors = 0;  // put into device commands so far (a large Io is split)
    uint32_t commands_in_flight = 0;  // commands holding part of it
};

class CompletionPort {
public:
    CompletionPort() = default;
    ~CompletionPort();  // panics if Ios are still outstanding: they would post to a dead port
    CompletionPort(const CompletionPort&) = delete;
    CompletionPort& operator=(const CompletionPort&) = delete;

    // The next completed Io, after its on_complete ran in this thread; nullptr if nothing is
    // outstanding or the deadline (time::now_ns() scale) passed first.
    Io* wait(uint64_t deadline_ns = kWaitForever);
    // Submitted through this port and not yet returned by wait().
    uint32_t outstanding() const { return __atomic_load_n(&outstanding_, __ATOMIC_RELAXED); }

private:
    friend struct PortAccess;  // block.cpp: submission and posting
    Io* take_done();
    bool has_done();
    Io* finish(Io& io);

    SpinLock lock_;  // guards done_ and waiter_
    IntrusiveList<Io, &Io::port_link> done_;
    WaitQueue waiter_;
    uint32_t outstanding_ = 0;  // changed by the owning thread only
    // What to poll while waiting: the queue of the latest submission.
    Device* poll_device_ = nullptr;
    uint32_t poll_queue_ = 0;
};

// Submits `count` Ios to `device` through this CPU's queue; each completes through `port`. An Io
// the block layer refuses (range, read-only, buffer) completes at once with that status.
void submit(CompletionPort& port, Device& device, Io* const* ios, uint32_t count);
inline void submit(CompletionPort& port, Device& device, Io& io) {
    Io* one = &io;
    submit(port, device, &one, 1);
}

// Synchronous helpers: submit one Io and wait for it. `device_error` receives the driver's detail.
IoStatus read(Device& device, uint64_t sector, uint32_t sectors, void* buffer, uint32_t* device_error = nullptr);
IoStatus write(Device& device, uint64_t sector, uint32_t sectors, const void* buffer, uint32_t* device_error = nullptr);
IoStatus flush(Device& device, uint32_t* device_error = nullptr);

// Registered devices, in registration order.
uint32_t device_count();
Device& device_at(uint32_t index);
Device* find_device(StringView name);

struct DeviceInfo {
    const char* name;
    uint64_t sectors;
    bool read_only;
    uint32_t max_sectors;       // per device command
    uint32_t queue_depth;       // per hardware queue
    uint32_t hardware_queues;
    bool polls;                 // waiters poll it
    bool fua;                   // takes FUA writes
};
DeviceInfo info(const Device& device);

struct DeviceStats {
    uint64_t ios;                    // accepted by submit
    uint64_t refused;                // completed by submit without reaching the device
    uint64_t commands;               // device commands started
    uint64_t merged_ios;             // Ios that joined a command started for an earlier Io
    uint64_t split_ios;              // Ios cut over several commands
    uint64_t interrupts;             // driver interrupts (block::interrupt calls)
    uint64_t interrupt_completions;  // commands completed from an interrupt
    uint64_t polled_completions;     // ... by a waiter's poll
    uint64_t inline_completions;     // ... while being started (a synchronous device)
    uint64_t errors;                 // commands the device failed
    uint64_t sectors_read, sectors_written, flushes;
    uint64_t polls_given_way;        // waiters' polls ended early for a thread ready on their CPU
};
DeviceStats stats(const Device& device);

}  // namespace hvkvm::guest::block
