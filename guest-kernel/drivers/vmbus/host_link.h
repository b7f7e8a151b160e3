// How a VMBus connection reaches its host and hears from it. In the kernel that is the hypervisor
// (HypervisorLink: HvPostMessage with message type 1, HvSignalEvent, and SINT 2 of the SynIC for
// what comes back); in-guest tests also run a Bus against a host of their own.
#pragma once

#include <stdint.h>

#include "hvkvm/abi/hypercall.h"
#include "hvkvm/abi/synic.h"

namespace hvkvm::guest::vmbus {

class Bus;

class HostLink {
public:
    // Posts one channel message (at most 240 bytes) to the host's message connection.
    virtual abi::hv::Status post_message(uint32_t connection_id, const void* bytes, uint32_t size) = 0;
    // Signals a channel's event connection (the offer's connection_id).
    virtual abi::hv::Status signal_event(uint32_t connection_id) = 0;
    // From now on, the host's messages go to bus.deliver_message() and its channel interrupts to
    // bus.channel_interrupt(). False if that cannot be arranged.
    virtual bool attach(Bus& bus) = 0;
    // Nothing reaches the bus any more once this returns.
    virtual void detach() = 0;

protected:
    ~HostLink() = default;
};

// The hypervisor: messages through HvPostMessage, signals through HvSignalEvent (an exit-free
// doorbell when the VMM registered one), and the host's messages and channel interrupts through
// SINT 2 of every CPU's SynIC (flag = relid).
class HypervisorLink final : public HostLink {
public:
    abi::hv::Status post_message(uint32_t connection_id, const void* bytes, uint32_t size) override;
    abi::hv::Status signal_event(uint32_t connection_id) override;
    bool attach(Bus& bus) override;
    void detach() override;

    // SINT 2 messages of another type than VMBus's (dropped).
    uint64_t foreign_messages() const { return __atomic_load_n(&foreign_messages_, __ATOMIC_RELAXED); }

private:
    static void on_message(void* context, const abi::synic::Message& message);
    static void on_event(void* context, uint32_t flag);

    Bus* bus_ = nullptr;
    uint64_t foreign_messages_ = 0;
};

}  // namespace hvkvm::guest::vmbus
