// An open VMBus channel as a VSC driver uses it: two rings in one GPADL (guest -> host first, the
// host -> guest ring after it), packets with transaction ids in both directions, and the
// signalling rules of the ring library (vmbus/ring): the host is signalled only when a ring went
// from empty to non-empty while it had not masked it, or when releasing space crossed its
// pending-send size.
//
// Interrupt policy. A reader that is busy keeps the host -> guest ring masked (the host then
// never signals it): reading masks it, and it is re-enabled only just before sleeping, with one
// more look for a packet that slipped in before the host could see the mask cleared (the
// lost-wakeup check). The channel polls only while requests are in flight (sent with "completion
// requested" and not yet completed), and then for at most `poll_ns`: a busy channel runs with no
// interrupt and, if the host polls as well, no signal; an idle one sleeps until its interrupt.
//
// A driver that reaps completions from its interrupt handler and from polling waiters (storvsc,
// through the block layer) sets `interrupt_handler` and `driver_masks_interrupts`: next() then
// leaves the mask alone and the driver decides with mask_interrupts()/unmask_interrupts().
//
// Threads: sends are serialised by the channel under a spinlock with interrupts off, so a send
// that does not wait (deadline 0) may come from any context, an interrupt handler included;
// receiving (next, copy_payload, release, wait_for_packets) is for one thread at a time.
#pragma once

#include <stdint.h>

#include "drivers/vmbus/bus.h"
#include "drivers/vmbus/library.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/wait_queue.h"
#include "kernel/sync/spinlock.h"

namespace hvkvm::guest::vmbus {

// Ring data areas are 1 .. 1024 pages (4 MiB, the page allocator's largest block) each.
struct ChannelOptions {
    uint32_t send_ring_pages = 16;     // data pages of the guest -> host ring (plus its control page)
    uint32_t receive_ring_pages = 16;  // data pages of the host -> guest ring (plus its control page)
    uint32_t target_cpu = 0;           // the VP the channel's interrupts arrive on
    uint64_t poll_ns = 50'000;         // how long a wait polls, while requests are in flight
    const uint8_t* user_data = nullptr;  // OPENCHANNEL's 120 bytes, or none
    // Called in interrupt context after every channel interrupt (after waiters were woken).
    void (*interrupt_handler)(void* context) = nullptr;
    void* interrupt_context = nullptr;
    // next() does not mask the host's interrupts: the driver does (mask_interrupts()).
    bool driver_masks_interrupts = false;
};

struct ChannelStats {
    uint64_t packets_sent;
    uint64_t packets_received;
    uint64_t host_signals;     // HvSignalEvent calls: a publish or release the host had to hear of
    uint64_t interrupts;       // channel interrupts taken
    uint64_t waits_polled;     // waits that found a packet while polling, interrupts masked
    uint64_t waits_slept;      // waits that re-enabled the interrupt and slept
    uint64_t arm_races;        // re-enabling found a packet that had slipped in (no sleep)
    uint64_t send_full_waits;  // sends that found the ring full and waited for the host
};

class Channel {
public:
    // Allocates both rings, describes them to the host in one GPADL and opens the channel.
    static BusError open(Device& device, const ChannelOptions& options, Channel*& channel);
    // CLOSECHANNEL (unless rescinded), GPADL teardown, and frees everything: `this` is gone.
    // Ring pages whose teardown the host never confirmed are leaked, not reused.
    BusError close();

    // Sending. A full ring waits for the host to free room until `deadline_ns` (time::now_ns()
    // scale; 0: do not wait) and then returns kFull. After a rescind: kNotAttached.
    ring::RingError send(const ring::OutgoingPacket& packet, uint64_t deadline_ns = 0);
    ring::RingError send_inband(uint64_t transaction_id, const void* data, uint32_t size, bool completion_requested,
                                uint64_t deadline_ns = 0);
    ring::RingError send_completion(uint64_t transaction_id, const void* data, uint32_t size, uint64_t deadline_ns = 0);
    ring::RingError send_gpa_direct(uint64_t transaction_id, const GpaRange* ranges, uint32_t range_count,
                                    const void* data, uint32_t size, bool completion_requested,
                                    uint64_t deadline_ns = 0);

    // Batched sending: writes as many of `packets` as fit and publishes them together, one index
    // store and at most one signal for the batch. Returns how many were written; when not even
    // the first fits (or is refused) `error` says why. Never waits.
    uint32_t send_batch(const ring::OutgoingPacket* packets, uint32_t count, ring::RingError& error);

    // Receiving. next() validates and consumes one packet; its payload stays readable until
    // release(), which hands the space back to the host (and signals it if it waits for room).
    ring::RingError next(ring::IncomingPacket& packet, ring::RangeBuffer ranges = {});
    ring::RingError copy_payload(const ring::IncomingPacket& packet, uint32_t offset, void* destination, uint32_t size);
    void release();
    // Waits for something to read (true; next() may also report corruption), the deadline, or a
    // rescind (false). Call after release().
    bool wait_for_packets(uint64_t deadline_ns);
    // For a driver that masks itself (driver_masks_interrupts): asks the host not to interrupt, or
    // to interrupt again; unmask_interrupts() returns true if packets arrived meanwhile (they
    // raised no interrupt: the caller reads them).
    void mask_interrupts();
    bool unmask_interrupts();
    // Whether a packet waits to be read (the receiving thread's look, without consuming it).
    bool has_packets() { return reader_.has_data(); }

    Device& device() const { return device_; }
    uint32_t relid() const { return device_.relid(); }
    uint32_t target_cpu() const { return options_.target_cpu; }
    bool is_rescinded() const { return __atomic_load_n(&rescinded_, __ATOMIC_ACQUIRE); }
    // From now on waits (wait_for_packets, a send waiting for room) return at once, as after a
    // rescind, but nothing is closed: how a driver tells its own receiving thread to stop before
    // it closes the channel.
    void stop_waiting();
    uint32_t requests_in_flight() const { return __atomic_load_n(&in_flight_, __ATOMIC_RELAXED); }
    void set_poll_ns(uint64_t poll_ns) { __atomic_store_n(&options_.poll_ns, poll_ns, __ATOMIC_RELAXED); }
    // The largest payload an in-band packet on this channel can carry.
    uint32_t max_inband_payload() const;
    ChannelStats stats() const;

    // For the bus: the channel's interrupt (interrupt context) and its rescind.
    void on_interrupt();
    void on_rescind();

private:
    Channel(Device& device, const ChannelOptions& options) : device_(device), options_(options) {}
    ~Channel();

    bool allocate_rings();
    void free_rings();
    BusError describe_and_open();
    void signal_host();
    void begin_reading();
    // Sleeps until a channel interrupt later than `seen`, a rescind, or the deadline.
    bool wait_for_interrupt(uint64_t seen, uint64_t deadline_ns);
    uint64_t interrupts_seen() const { return __atomic_load_n(&stats_.interrupts, __ATOMIC_ACQUIRE); }

    struct Ring {
        uint8_t* control = nullptr;
        uint8_t* data = nullptr;
        uint32_t data_pages = 0;
        uint32_t data_order = 0;
    };

    Device& device_;
    ChannelOptions options_;
    Ring send_ring_, receive_ring_;
    ring::ContiguousRingMemory* send_memory_ = nullptr;
    ring::ContiguousRingMemory* receive_memory_ = nullptr;
    uint32_t gpadl_ = 0;
    bool gpadl_created_ = false;
    bool opened_ = false;
    bool rescinded_ = false;
    bool waits_stopped_ = false;

    SpinLock send_lock_;  // guards writer_ (with interrupts off; a sender waiting for room drops it)
    ring::RingWriter writer_;
    ring::RingReader reader_;       // the receiving thread's, as is:
    bool receive_masked_ = false;   // whether it has asked the host not to interrupt
    uint32_t in_flight_ = 0;

    SpinLock wake_lock_;  // with interrupts disabled: wakers_ and the interrupt count's changes
    WaitQueue wakers_;
    ChannelStats stats_ = {};
};

}  // namespace hvkvm::guest::vmbus
