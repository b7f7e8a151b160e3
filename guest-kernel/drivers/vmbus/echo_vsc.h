// The echo VSC (vmbus/services/echo.h): a request is an in-band packet with "completion
// requested"; the host's echo VSP answers each with a completion carrying the same transaction id
// and payload. For testing and measuring VMBus itself.
#pragma once

#include <stdint.h>

#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/driver_model.h"
#include "kernel/sched/mutex.h"
#include "lib/intrusive_list.h"

namespace hvkvm::guest::vmbus::echo {

enum class EchoResult : uint8_t {
    kOk,
    kSendFailed,  // the request did not fit the ring before the deadline (or was malformed)
    kTimeout,     // no completion before the deadline
    kMismatch,    // a completion whose size or bytes differ from the request
    kCorrupt,     // the host -> guest ring is corrupt
    kClosed,      // no channel, or it was rescinded
};
const char* echo_result_name(EchoResult result);

// The rings the driver opens a device's channel with: 64 KiB each way, four echo packets of the
// largest payload (services::echo::kMaxPayload) at once.
ChannelOptions default_channel_options();

class EchoDevice {
public:
    static constexpr uint32_t kMaxBatch = 256;

    Device& device() const { return device_; }
    // nullptr between a failed reopen() and the next successful one.
    Channel* channel() const { return channel_; }

    // One request and its completion (queue depth 1): the completion must carry the request's
    // id and bytes (padded with zeros to whole 8-byte units, as the ring carries every payload).
    // Other packets met meanwhile are counted (unexpected()) and dropped.
    EchoResult round_trip(const void* payload, uint32_t size, uint64_t deadline_ns);

    // Pipelined use: send requests, then collect completions in any order. collect() copies up to
    // `capacity` payload bytes and reports the completion's id and full size.
    EchoResult send_request(uint64_t transaction_id, const void* payload, uint32_t size, uint64_t deadline_ns);
    EchoResult collect(uint64_t& transaction_id, void* payload, uint32_t capacity, uint32_t& size, uint64_t deadline_ns);

    // Pipelined and batched: sends up to `count` (at most kMaxBatch) requests (ids first_id,
    // first_id + 1, ...) with one publish, returns how many went out (0: the ring is full or the
    // channel gone). Then
    // collects every completion available, waiting for the first until the deadline, with one
    // release; each must have `size` payload bytes (padded to 8).
    uint32_t send_requests(uint64_t first_id, uint32_t count, const void* payload, uint32_t size);
    EchoResult collect_available(uint32_t size, uint32_t& collected, uint64_t deadline_ns);

    // Closes the channel and opens it again with other options (ring sizes, target CPU, polling).
    BusError reopen(const ChannelOptions& options);

    uint64_t unexpected() const { return unexpected_; }

    // The driver's hooks (device thread): open the channel / close it and free the device.
    static bool probe(Device& device);
    static void remove(Device& device);

private:
    explicit EchoDevice(Device& device) : device_(device) {}
    EchoResult collect_locked(uint64_t& transaction_id, void* payload, uint32_t capacity, uint32_t& size,
                              uint64_t deadline_ns);

    Device& device_;
    Mutex use_lock_;  // one operation at a time; remove() waits for the one in progress
    Channel* channel_ = nullptr;
    uint64_t next_transaction_id_ = 1;
    uint64_t unexpected_ = 0;
    uint8_t* scratch_ = nullptr;  // services::echo::kMaxPayload bytes: a completion's payload
    ring::OutgoingPacket* batch_ = nullptr;  // kMaxBatch descriptors for send_requests()
    ListNode link;
    friend struct Registry;
};

Driver& driver();

// The first echo device bound on `bus`, or nullptr. It stays valid until the host rescinds its
// offer, its driver is unregistered or the bus stops (a call in progress then returns kClosed,
// and the object is gone afterwards): the caller rules those out while it holds the pointer.
EchoDevice* first_device(const Bus& bus);
uint32_t device_count(const Bus& bus);

}  // namespace hvkvm::guest::vmbus::echo
