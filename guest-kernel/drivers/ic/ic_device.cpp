#include "drivers/ic/ic_device.h"

#include <new>

#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "mm/heap.h"

namespace hvkvm::guest::ic {

using vmbus::ring::RingError;

namespace {

constexpr uint64_t kAnswerDeadlineNs = 1'000'000'000;  // an answer waits at most this for ring space

}  // namespace

bool ServiceState::is_negotiated() {
    IrqSpinLockGuard guard(lock);
    return negotiated;
}

wire::Versions ServiceState::versions() {
    IrqSpinLockGuard guard(lock);
    return agreed;
}

IcStats ServiceState::stats() {
    IrqSpinLockGuard guard(lock);
    return counters;
}

vmbus::ChannelOptions ic_channel_options(uint32_t send_pages, uint32_t receive_pages) {
    vmbus::ChannelOptions options;
    options.send_ring_pages = send_pages;
    options.receive_ring_pages = receive_pages;
    options.target_cpu = 0;
    options.poll_ns = 0;
    return options;
}

IcDevice::IcDevice(vmbus::Device& device, ServiceState& state, const vmbus::ChannelOptions& options)
    : device_(device), state_(state), options_(options) {}

IcDevice::~IcDevice() {
    mm::free(payload_);
    delete response_;
}

bool IcDevice::start() {
    payload_ = static_cast<uint8_t*>(mm::allocate(wire::kMaxPacketPayload));
    response_ = new (std::nothrow) wire::Packet;
    if (!payload_ || !response_) return false;
    const vmbus::BusError error = vmbus::Channel::open(device_, options_, channel_);
    if (error != vmbus::BusError::kNone) {
        kprint("ic: %s: channel not opened: %s\n", state_.service.name, vmbus::bus_error_name(error));
        return false;
    }
    sched::ThreadOptions thread_options;
    thread_options.name = state_.service.name;
    thread_options.ideal_cpu = options_.target_cpu;
    thread_options.stack_bytes = 32 * 1024;  // KVP records and packets are a few KiB each
    thread_ = start_service() ? sched::create_thread(thread_entry, this, thread_options) : nullptr;
    if (!thread_) {
        stop_service();
        channel_->close();
        channel_ = nullptr;
        return false;
    }
    return true;
}

void IcDevice::stop() {
    stop_service();
    channel_->stop_waiting();  // the thread leaves its wait and ends
    sched::join(thread_);
    thread_ = nullptr;
    {
        IrqSpinLockGuard guard(state_.lock);
        state_.negotiated = false;
        state_.negotiated_event.reset();
    }
    channel_->close();
    channel_ = nullptr;
}

void IcDevice::thread_entry(void* self) { static_cast<IcDevice*>(self)->serve(); }

void IcDevice::serve() {
    for (;;) {
        vmbus::ring::IncomingPacket packet;
        const RingError error = channel_->next(packet);
        if (error == RingError::kEmpty) {
            if (!channel_->wait_for_packets(kWaitForever)) return;  // stopped or rescinded
            continue;
        }
        if (error != RingError::kOk) {
            kprint("ic: %s: the host's ring is corrupt (%s); the service stops\n", state_.service.name,
                   vmbus::ring::ring_error_name(error));
            return;
        }
        const bool usable = packet.type == vmbus::ring::PacketType::kInBand && packet.payload_size <= wire::kMaxPacketPayload &&
                            channel_->copy_payload(packet, 0, payload_, packet.payload_size) == RingError::kOk;
        const uint64_t transaction_id = packet.transaction_id;
        const uint32_t size = packet.payload_size;
        channel_->release();
        if (usable) handle(transaction_id, size);
        else count(&IcStats::malformed);
    }
}

void IcDevice::handle(uint64_t transaction_id, uint32_t size) {
    wire::Message message;
    if (wire::parse_message(payload_, size, message) != wire::IcError::kNone || !message.is_request() ||
        !message.is_transaction()) {
        count(&IcStats::malformed);
        return;
    }
    if (message.header.type == wire::MessageType::kNegotiate) {
        negotiate(transaction_id, message);
        return;
    }
    const wire::Versions agreed = state_.versions();
    if (!state_.is_negotiated() || message.header.type != state_.service.message_type ||
        !(message.header.framework_version == agreed.framework) || !(message.header.message_version == agreed.message) ||
        !answer(message, *response_)) {
        count(&IcStats::refused);
        return;
    }
    count(&IcStats::requests);
    send_answer(transaction_id);
}

// The host offers; the guest takes the highest of each kind it supports (or says none fit).
void IcDevice::negotiate(uint64_t transaction_id, const wire::Message& offer) {
    wire::Versions chosen;
    const wire::IcError error = wire::choose_versions(offer, wire::kFrameworks, state_.supported, chosen);
    if (error != wire::IcError::kNone && error != wire::IcError::kNoCommonVersion) {
        count(&IcStats::malformed);
        return;
    }
    const bool agreed = error == wire::IcError::kNone;
    if (!wire::build_negotiate_response(*response_, offer.header, agreed ? &chosen : nullptr)) return;
    count(&IcStats::negotiations);
    send_answer(transaction_id);
    IrqSpinLockGuard guard(state_.lock);
    state_.negotiated = agreed;
    state_.agreed = chosen;
    if (agreed) state_.negotiated_event.set();
    else state_.negotiated_event.reset();
}

void IcDevice::send_answer(uint64_t transaction_id) {
    const RingError error = channel_->send_inband(transaction_id, response_->bytes, response_->size,
                                                  /*completion_requested=*/false, time::now_ns() + kAnswerDeadlineNs);
    if (error != RingError::kOk) count(&IcStats::send_failures);
}

void IcDevice::count(uint64_t IcStats::*counter) {
    IrqSpinLockGuard guard(state_.lock);
    ++(state_.counters.*counter);
}

}  // namespace hvkvm::guest::ic
