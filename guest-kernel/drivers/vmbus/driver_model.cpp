#include "drivers/vmbus/driver_model.h"

#include <new>

#include "drivers/vmbus/bus.h"
#include "kernel/console.h"

namespace hvkvm::guest::vmbus {

DriverModel::~DriverModel() { stop(); }

bool DriverModel::start() {
    if (thread_) return true;
    {
        IrqSpinLockGuard guard(lock_);
        stopping_ = false;
    }
    sched::ThreadOptions options;
    options.name = "vmbus-devices";
    thread_ = sched::create_thread(thread_entry, this, options);
    return thread_ != nullptr;
}

void DriverModel::stop() {
    if (!thread_) return;
    {
        IrqSpinLockGuard guard(lock_);
        for (Device* device = devices_.front(); device; device = devices_.next_of(*device)) device->unloading = true;
        stopping_ = true;
        ++requested_;
        work_.wake_all();
    }
    sched::join(thread_);  // it returns once every device is gone
    thread_ = nullptr;
}

// --- Events from the bus -------------------------------------------------------------------------

void DriverModel::offered(const protocol::OfferChannel& offer) {
    auto* device = new (std::nothrow) Device(bus_, offer);
    if (!device) {
        kprint("vmbus: out of memory for the device of relid %u\n", offer.child_relid);
        return;
    }
    IrqSpinLockGuard guard(lock_);
    if (stopping_) {
        delete device;
        return;
    }
    devices_.push_back(*device);
    ++requested_;
    work_.wake_all();
}

void DriverModel::rescinded(uint32_t relid) {
    IrqSpinLockGuard guard(lock_);
    for (Device* device = devices_.front(); device; device = devices_.next_of(*device)) {
        if (device->relid() != relid || device->is_rescinded()) continue;
        __atomic_store_n(&device->rescinded_, true, __ATOMIC_RELEASE);
        ++requested_;
        work_.wake_all();
        return;
    }
}

// --- Drivers --------------------------------------------------------------------------------------

void DriverModel::register_driver(Driver& driver) {
    {
        IrqSpinLockGuard guard(lock_);
        if (driver.link.linked()) return;  // registered already
        driver.leaving = false;
        drivers_.push_back(driver);
        // A device no driver wanted so far gets another chance with this one.
        for (Device* device = devices_.front(); device; device = devices_.next_of(*device)) device->probe_failed = false;
        ++requested_;
        work_.wake_all();
    }
    settle();
}

void DriverModel::unregister_driver(Driver& driver) {
    {
        IrqSpinLockGuard guard(lock_);
        if (!driver.link.linked()) return;
        driver.leaving = true;
        ++requested_;
        work_.wake_all();
    }
    settle();  // its devices are removed (if the device thread runs; else it has none)
    IrqSpinLockGuard guard(lock_);
    drivers_.remove(driver);
}

void DriverModel::settle() {
    IrqSpinLockGuard guard(lock_);
    const uint64_t target = requested_;
    while (thread_ && settled_ < target) settle_waiters_.wait(lock_);
}

uint32_t DriverModel::device_count() {
    IrqSpinLockGuard guard(lock_);
    uint32_t count = 0;
    for (Device* device = devices_.front(); device; device = devices_.next_of(*device)) count += !device->is_rescinded();
    return count;
}

bool DriverModel::is_bound(const protocol::Guid& instance) {
    IrqSpinLockGuard guard(lock_);
    for (Device* device = devices_.front(); device; device = devices_.next_of(*device))
        if (device->instance() == instance && !device->is_rescinded()) return device->driver != nullptr;
    return false;
}

// --- The device thread -------------------------------------------------------------------------------

void DriverModel::thread_entry(void* self) { static_cast<DriverModel*>(self)->run(); }

void DriverModel::run() {
    for (;;) {
        Action action = Action::kNone;
        Device* device = nullptr;
        {
            IrqSpinLockGuard guard(lock_);
            for (;;) {
                const uint64_t generation = requested_;
                device = next_action_locked(action);
                if (device) break;
                settled_ = generation;
                settle_waiters_.wake_all();
                if (stopping_ && devices_.empty()) return;
                work_.wait(lock_);
            }
        }
        if (action == Action::kProbe) probe(*device);
        else remove(*device);
    }
}

Driver* DriverModel::matching_driver_locked(const Device& device) {
    for (Driver* driver = drivers_.front(); driver; driver = drivers_.next_of(*driver))
        if (!driver->leaving && driver->interface_type == device.interface_type()) return driver;
    return nullptr;
}

Device* DriverModel::next_action_locked(Action& action) {
    for (Device* device = devices_.front(); device; device = devices_.next_of(*device)) {
        if (device->is_rescinded() || device->unloading || (device->driver && device->driver->leaving)) {
            action = Action::kRemove;
            return device;
        }
        if (!device->driver && !device->probe_failed && matching_driver_locked(*device)) {
            action = Action::kProbe;
            return device;
        }
    }
    action = Action::kNone;
    return nullptr;
}

// Only this thread binds, unbinds and frees devices, so `device` stays valid here.
void DriverModel::probe(Device& device) {
    Driver* driver;
    {
        IrqSpinLockGuard guard(lock_);
        driver = matching_driver_locked(device);
    }
    if (!driver) return;
    const bool taken = driver->probe(device);
    IrqSpinLockGuard guard(lock_);
    if (taken) device.driver = driver;
    else device.probe_failed = true;
}

void DriverModel::remove(Device& device) {
    if (device.driver) device.driver->remove(device);
    bool gone, release;
    {
        IrqSpinLockGuard guard(lock_);
        device.driver = nullptr;
        device.driver_data = nullptr;
        gone = device.is_rescinded() || device.unloading;
        // Unload forgets every relid by itself; a rescinded one is released once nothing uses it.
        release = device.is_rescinded() && !device.unloading;
        // Unlinked before the release: the host may offer the relid again at once.
        if (gone) devices_.remove(device);
    }
    if (release) bus_.release_relid(device.relid());
    if (gone) delete &device;
}

}  // namespace hvkvm::guest::vmbus
