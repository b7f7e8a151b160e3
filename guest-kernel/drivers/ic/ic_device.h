// The guest's side of an integration service (vmbus/services/ic.h): a VSC driver whose device
// opens the channel and runs a thread that answers the host. The host speaks first: a version
// negotiation, which the device answers with the highest framework and message versions both
// sides support; then requests, each answered by the service (answer()) with the same VMBus
// transaction id. Every packet is copied once out of the ring and parsed with the shared codec;
// what is not a well-formed request of the negotiated service and versions is counted and
// dropped, never answered.
//
// A service's lasting state (is it negotiated, its counters) lives in a ServiceState that
// outlives devices: the kernel and tests read it whether or not a device is bound right now.
#pragma once

#include <new>
#include <stdint.h>

#include "drivers/vmbus/channel.h"
#include "drivers/vmbus/driver_model.h"
#include "kernel/sched/mutex.h"
#include "kernel/sched/thread.h"
#include "kernel/sync/spinlock.h"
#include "vmbus/services/ic_codec.h"

namespace hvkvm::guest::ic {

namespace wire = ::hvkvm::vmbus::services::ic;

struct IcStats {
    uint64_t negotiations;  // version offers answered
    uint64_t requests;      // requests answered
    uint64_t refused;       // well-formed packets that were not a request of this service now
    uint64_t malformed;     // packets that are not IC messages, or too large for any
    uint64_t send_failures; // answers that did not fit the ring in time
};

// One service, for the kernel's lifetime.
struct ServiceState {
    ServiceState(const wire::Service& service_, wire::VersionList supported_) : service(service_), supported(supported_) {}

    const wire::Service& service;
    const wire::VersionList supported;  // the message versions this kernel implements

    bool is_negotiated();
    wire::Versions versions();
    IcStats stats();
    // Waits until a device of this service has negotiated (true) or the deadline passes.
    bool wait_negotiated(uint64_t deadline_ns) { return negotiated_event.wait_until(deadline_ns); }

    SpinLock lock;  // guards the fields below (taken with interrupts disabled)
    bool negotiated = false;
    wire::Versions agreed{};
    IcStats counters = {};
    Event negotiated_event;  // manual reset: set while negotiated
};

class IcDevice {
public:
    virtual ~IcDevice();
    IcDevice(const IcDevice&) = delete;
    IcDevice& operator=(const IcDevice&) = delete;

    // For the driver's probe and remove (device thread): opens the channel and starts the
    // thread / stops the thread and closes the channel.
    bool start();
    void stop();

    vmbus::Device& device() const { return device_; }
    ServiceState& state() const { return state_; }

protected:
    IcDevice(vmbus::Device& device, ServiceState& state, const vmbus::ChannelOptions& options);

    // A request of the negotiated service and versions: build the answer (wire::build_response
    // with the request's header) into `response`. False: it is refused (counted, not answered).
    virtual bool answer(const wire::Message& request, wire::Packet& response) = 0;
    // For a service that sends on its own (the guest log): the open channel, or nullptr.
    vmbus::Channel* channel() const { return channel_; }
    virtual bool start_service() { return true; }  // after the channel opened
    virtual void stop_service() {}                 // before it closes

private:
    static void thread_entry(void* self);
    void serve();
    void handle(uint64_t transaction_id, uint32_t size);
    void negotiate(uint64_t transaction_id, const wire::Message& offer);
    void send_answer(uint64_t transaction_id);
    void count(uint64_t IcStats::*counter);

    vmbus::Device& device_;
    ServiceState& state_;
    vmbus::ChannelOptions options_;
    vmbus::Channel* channel_ = nullptr;
    sched::Thread* thread_ = nullptr;
    uint8_t* payload_ = nullptr;         // wire::kMaxPacketPayload: the private copy of one packet
    wire::Packet* response_ = nullptr;   // the answer being built
};

// The driver hooks for a service class `Service` (constructed from a Device&).
template <typename Service>
bool probe(vmbus::Device& device) {
    auto* service = new (std::nothrow) Service(device);
    if (!service) return false;
    if (!service->start()) {
        delete service;
        return false;
    }
    device.driver_data = service;
    return true;
}

template <typename Service>
void remove(vmbus::Device& device) {
    auto* service = static_cast<Service*>(device.driver_data);
    service->stop();
    delete service;
}

// The channels integration services open: small rings, interrupts on CPU 0, no polling (the
// host's requests are rare).
vmbus::ChannelOptions ic_channel_options(uint32_t send_pages = 4, uint32_t receive_pages = 4);

}  // namespace hvkvm::guest::ic
