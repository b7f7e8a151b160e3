// The guest's storvsc: the synthetic SCSI controller on VMBus (vmbus/services/storage.h) as block
// devices. Each SCSI controller offer is probed by this driver (the VSC driver model):
//
//   primary channel: BEGIN_INITIALIZATION -> QUERY_PROTOCOL_VERSION (6.2, 6.0, 5.1: the newest the
//   host takes) -> QUERY_PROPERTIES (max transfer, max sub-channels) -> END_INITIALIZATION ->
//   REPORT LUNS, and per LUN INQUIRY, READ CAPACITY(16), MODE SENSE(6) (write protect) ->
//   CREATE_SUB_CHANNELS for one channel per vCPU (bounded by the host's maximum)
//   sub-channel k (its own offer, probed like the primary): opened with vCPU k as its target
//   once every channel is open: one block device per LUN ("sd0", "sd1", ...), a hardware queue
//   per channel, so CPU c submits on channel c (mod the channel count) and its completions
//   interrupt CPU c.
//
// Data path: a block command is one EXECUTE_SRB (READ(16), WRITE(16) with FUA when asked,
// SYNCHRONIZE CACHE(10) for a flush) whose buffer is the command's pages as one GPA-direct range
// (no bounce copy). Requests in flight are found again by their transaction id in the channel's
// slot table; a completion with an id that names no request in flight (unknown, stale or
// duplicate) is counted and dropped. Completions are reaped by the channel's interrupt handler,
// or, while a waiter polls (the block layer's poll_ns), with the channel's interrupt masked.
//
// Errors reach the block layer's caller as IoStatus with Io::device_error =
// srb_status << 24 | sense_key << 16 | asc << 8 | ascq (error_detail()); LBA OUT OF RANGE becomes
// kOutOfRange, DATA PROTECT WRITE PROTECTED kReadOnly, everything else kDeviceError.
#pragma once

#include <stdint.h>

#include "block/block.h"
#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/driver_model.h"
#include "vmbus/services/storage.h"

namespace hvkvm::guest::storvsc {

namespace wire = ::hvkvm::vmbus::services::storage;

inline constexpr uint32_t kMaxLuns = 4;                  // LUNs per controller this driver registers
inline constexpr uint32_t kMaxChannels = 33;             // the primary and up to 32 sub-channels
inline constexpr uint32_t kQueueDepth = 32;              // per LUN and channel
inline constexpr uint32_t kMaxTransferBytes = 1u << 20;  // what the driver takes, whatever the host offers

// Io::device_error for SRB outcomes.
constexpr uint32_t error_detail(uint8_t srb_status, uint8_t sense_key, uint8_t asc, uint8_t ascq) {
    return uint32_t{srb_status} << 24 | uint32_t{sense_key} << 16 | uint32_t{asc} << 8 | ascq;
}
// Not from the host: the driver could not send, or the answer made no sense.
inline constexpr uint32_t kDetailSendFailed = 0xff000001;
inline constexpr uint32_t kDetailBadAnswer = 0xff000002;
inline constexpr uint32_t kDetailShortTransfer = 0xff000003;
inline constexpr uint32_t kDetailControllerGone = 0xff000004;

struct LunInfo {
    const char* name;       // the block device's
    uint8_t lun;
    uint64_t sectors;
    bool read_only;
    block::Device* device;
};

struct ControllerInfo {
    uint16_t version;             // negotiated protocol (major << 8 | minor)
    uint32_t max_transfer_bytes;  // as the host reported it
    uint16_t max_sub_channels;    // as the host reported it
    uint32_t channels;            // open: the primary and the sub-channels
    uint32_t lun_count;
    bool ready;                   // block devices registered
};

struct ChannelCounters {
    uint32_t target_cpu;
    uint64_t requests;            // SRBs sent
    uint64_t completions;         // matched to a request in flight
    uint64_t unknown_completions; // dropped: no request in flight had that id
    uint64_t unsolicited;         // host-initiated packets (ENUMERATE_BUS, REMOVE_DEVICE, ...)
    uint64_t interrupts;          // channel interrupts taken
    uint64_t interrupt_cpu_mismatches;  // interrupts taken on another CPU than the target
    uint64_t send_failures;       // a full ring or a closed channel: should not happen
    uint64_t late_packets;        // completions found on the second look after a release (no interrupt announced them)
    uint64_t host_signals;        // HvSignalEvent calls on the channel (each a VM exit)
};

class Controller;

// The VSC driver (storage interface GUID).
vmbus::Driver& driver();
// Its hooks, for a test bus's own Driver (a Driver is registered on one bus at a time).
bool probe(vmbus::Device& device);
void remove(vmbus::Device& device);
// How long a waiter polls a busy disk (the block layer's poll_ns) for disks registered from now
// on; kernel command line storvsc.poll_us=N. 0: never poll, an interrupt per wake-up.
// 1 ms: long enough to ride out storvsp's batching at queue depth 32 on a shared host (100 µs
// slept, and took an interrupt, every ~16 I/Os: 0.3 exits per I/O against 0.015) and to cover a
// 1 MiB read; a poll ends early when another thread is ready on the CPU (block layer).
inline constexpr uint64_t kDefaultPollNs = 1'000'000;
void set_poll_ns(uint64_t poll_ns);
// Waits until every controller probed so far has registered its disks (or failed); false on the
// deadline (time::now_ns() scale).
bool wait_until_ready(uint64_t deadline_ns);

// The controllers initialized and not removed, in probe order.
uint32_t controller_count();
Controller* controller_at(uint32_t index);
// The controller whose primary channel was offered on `bus`, or nullptr.
Controller* find_controller(const vmbus::Bus& bus);
ControllerInfo info(const Controller& controller);
const LunInfo* lun(const Controller& controller, uint32_t index);
ChannelCounters channel_counters(const Controller& controller, uint32_t channel);
// The LUN whose block device this is, or nullptr (not a storvsc disk).
const LunInfo* find_lun(const block::Device& device);

// The debug entry for tests: one hand-made request on a channel, waited for by polling. The
// payload is sent as is (normally a wire::Packet, but any size); with `range`, as a GPA-direct
// packet naming those pages.
struct RawRequest {
    const void* payload = nullptr;
    uint32_t payload_size = 0;
    const vmbus::GpaRange* range = nullptr;
    // The answer.
    wire::Packet answer{};
    uint32_t answer_size = 0;  // the completion's payload size (answer holds at most 64 bytes)
};
enum class RawResult : uint8_t { kOk, kSendFailed, kTimeout, kGone };
RawResult execute_raw(Controller& controller, uint32_t channel, RawRequest& request, uint64_t timeout_ns);

}  // namespace hvkvm::guest::storvsc
