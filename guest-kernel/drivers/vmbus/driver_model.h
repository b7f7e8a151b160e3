// The VSC driver model: a driver registers with the interface GUID it serves; each offer the host
// makes becomes a Device, which is probed by the first registered driver whose GUID matches, and
// removed when the host rescinds the offer (then the relid is released, so the host may reuse
// it), when its driver unregisters, or when the bus unloads.
//
// Probe and remove run in one thread per bus ("vmbus-devices"), one at a time, and may block:
// they open and close channels, which wait for the host. That thread reconciles rather than
// replays events: on every wake-up it looks for any device whose state calls for an action, so an
// offer, a rescind or a new driver is never lost however they interleave.
#pragma once

#include <stdint.h>

#include "drivers/vmbus/library.h"
#include "kernel/sched/thread.h"
#include "kernel/sched/wait_queue.h"
#include "kernel/sync/spinlock.h"
#include "lib/intrusive_list.h"

namespace hvkvm::guest::vmbus {

class Bus;
class Device;

struct Driver {
    const char* name;
    protocol::Guid interface_type;
    // Device thread. True if the driver took the device (it may keep state in driver_data).
    bool (*probe)(Device& device);
    // Device thread. Undo what probe did: close channels, free buffers. Also called for a
    // rescinded device, whose channels the host has already closed.
    void (*remove)(Device& device);

    ListNode link;         // the driver model's list
    bool leaving = false;  // unregister_driver() in progress
};

// One offer. Owned by the driver model; valid from probe until remove returns.
class Device {
public:
    Bus& bus() const { return bus_; }
    const protocol::OfferChannel& offer() const { return offer_; }
    uint32_t relid() const { return offer_.child_relid; }
    const protocol::Guid& interface_type() const { return offer_.interface_type; }
    const protocol::Guid& instance() const { return offer_.interface_instance; }
    bool is_rescinded() const { return __atomic_load_n(&rescinded_, __ATOMIC_ACQUIRE); }

    void* driver_data = nullptr;  // the bound driver's

private:
    friend class DriverModel;
    Device(Bus& bus, const protocol::OfferChannel& offer) : bus_(bus), offer_(offer) {}

    Bus& bus_;
    protocol::OfferChannel offer_;
    ListNode link;
    Driver* driver = nullptr;
    bool probe_failed = false;  // no retry until another driver registers
    bool rescinded_ = false;
    bool unloading = false;     // the bus unloads: remove without releasing the relid
};

class DriverModel {
public:
    explicit DriverModel(Bus& bus) : bus_(bus) {}
    ~DriverModel();  // after stop()

    bool start();
    // Removes every device (bound ones through their driver), ends the device thread.
    void stop();

    // From the bus's message thread: must not wait for the bus.
    void offered(const protocol::OfferChannel& offer);
    void rescinded(uint32_t relid);

    // Any thread. Probing (and removal on unregister) has happened when these return.
    void register_driver(Driver& driver);
    void unregister_driver(Driver& driver);

    // Waits until the device thread has acted on everything that happened before the call.
    void settle();

    uint32_t device_count();
    // Whether an offer of `instance` exists and is bound to a driver.
    bool is_bound(const protocol::Guid& instance);

private:
    enum class Action { kNone, kProbe, kRemove };

    static void thread_entry(void* self);
    void run();
    void kick();
    // Under lock_: the next device that needs something done, and what.
    Device* next_action_locked(Action& action);
    Driver* matching_driver_locked(const Device& device);
    void probe(Device& device);
    void remove(Device& device);

    Bus& bus_;
    SpinLock lock_;  // guards everything below (taken with interrupts disabled)
    IntrusiveList<Device, &Device::link> devices_;
    IntrusiveList<Driver, &Driver::link> drivers_;
    bool stopping_ = false;
    uint64_t requested_ = 0;  // generation of the latest change
    uint64_t settled_ = 0;    // generation the device thread has fully acted on
    WaitQueue work_;          // the device thread waits here for a change
    WaitQueue settle_waiters_;
    sched::Thread* thread_ = nullptr;
};

}  // namespace hvkvm::guest::vmbus
