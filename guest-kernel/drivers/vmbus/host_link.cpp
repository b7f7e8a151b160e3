#include "drivers/vmbus/host_link.h"

#include "drivers/synic/synic.h"
#include "drivers/vmbus/bus.h"
#include "hv/hypervisor.h"

namespace hvkvm::guest::vmbus {

using abi::hv::Status;

Status HypervisorLink::post_message(uint32_t connection_id, const void* bytes, uint32_t size) {
    return hv::post_message(connection_id, abi::synic::kMessageTypeVmbus, bytes, size);
}

Status HypervisorLink::signal_event(uint32_t connection_id) { return hv::signal_event(connection_id); }

bool HypervisorLink::attach(Bus& bus) {
    if (bus_ || !synic::available()) return false;
    bus_ = &bus;
    synic::SintHandler handler;
    handler.on_message = on_message;
    handler.on_event = on_event;
    handler.context = this;
    if (synic::attach(abi::synic::kVmbusSint, handler)) return true;
    bus_ = nullptr;
    return false;
}

void HypervisorLink::detach() {
    if (!bus_) return;
    synic::detach(abi::synic::kVmbusSint);
    bus_ = nullptr;
}

void HypervisorLink::on_message(void* context, const abi::synic::Message& message) {
    auto& link = *static_cast<HypervisorLink*>(context);
    if (message.header.message_type != abi::synic::kMessageTypeVmbus) {
        __atomic_fetch_add(&link.foreign_messages_, 1, __ATOMIC_RELAXED);
        return;
    }
    link.bus_->deliver_message(message.payload, message.header.payload_size);
}

// SINT 2's event flags are the channels' interrupts: flag n is relid n.
void HypervisorLink::on_event(void* context, uint32_t flag) { static_cast<HypervisorLink*>(context)->bus_->channel_interrupt(flag); }

}  // namespace hvkvm::guest::vmbus
