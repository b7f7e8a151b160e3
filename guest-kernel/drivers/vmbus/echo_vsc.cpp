#include "drivers/vmbus/echo_vsc.h"

#include <new>

#include "arch/x86_64/time.h"
#include "kernel/console.h"
#include "lib/string.h"
#include "mm/heap.h"
#include "vmbus/services/echo.h"

namespace hvkvm::guest::vmbus::echo {

namespace service = ::hvkvm::vmbus::services::echo;
using ring::RingError;

// The bound echo devices.
struct Registry {
    SpinLock lock;  // taken with interrupts disabled
    IntrusiveList<EchoDevice, &EchoDevice::link> devices;
    uint32_t count = 0;
};

namespace {

Registry registry;

Driver echo_driver{"echo", service::kInterfaceType, EchoDevice::probe, EchoDevice::remove, {}, false};

EchoResult send_result(RingError error) {
    if (error == RingError::kOk) return EchoResult::kOk;
    return error == RingError::kNotAttached ? EchoResult::kClosed : EchoResult::kSendFailed;
}

}  // namespace

const char* echo_result_name(EchoResult result) {
    switch (result) {
        case EchoResult::kOk: return "ok";
        case EchoResult::kSendFailed: return "request not sent";
        case EchoResult::kTimeout: return "no completion";
        case EchoResult::kMismatch: return "completion differs from the request";
        case EchoResult::kCorrupt: return "ring corrupt";
        case EchoResult::kClosed: return "channel closed";
    }
    return "unknown";
}

ChannelOptions default_channel_options() {
    ChannelOptions options;
    options.send_ring_pages = 16;
    options.receive_ring_pages = 16;
    return options;
}

bool EchoDevice::probe(Device& device) {
    auto* echo = new (std::nothrow) EchoDevice(device);
    if (!echo) return false;
    echo->scratch_ = static_cast<uint8_t*>(mm::allocate(service::kMaxPayload));
    echo->batch_ = new (std::nothrow) ring::OutgoingPacket[kMaxBatch];
    BusError error = echo->scratch_ && echo->batch_ ? Channel::open(device, default_channel_options(), echo->channel_)
                                                    : BusError::kNoMemory;
    if (error != BusError::kNone) {
        kprint("vmbus: echo device on relid %u not opened: %s\n", device.relid(), bus_error_name(error));
        mm::free(echo->scratch_);
        delete[] echo->batch_;
        delete echo;
        return false;
    }
    device.driver_data = echo;
    IrqSpinLockGuard guard(registry.lock);
    registry.devices.push_back(*echo);
    ++registry.count;
    return true;
}

void EchoDevice::remove(Device& device) {
    auto* echo = static_cast<EchoDevice*>(device.driver_data);
    {
        IrqSpinLockGuard guard(registry.lock);
        registry.devices.remove(*echo);
        --registry.count;
    }
    {
        // A rescinded channel has woken its waiters already, so the call in progress ends soon.
        MutexGuard in_use(echo->use_lock_);
        if (echo->channel_) echo->channel_->close();
        echo->channel_ = nullptr;
    }
    mm::free(echo->scratch_);
    delete[] echo->batch_;
    delete echo;
}

Driver& driver() { return echo_driver; }

EchoDevice* first_device(const Bus& bus) {
    IrqSpinLockGuard guard(registry.lock);
    for (EchoDevice* echo = registry.devices.front(); echo; echo = registry.devices.next_of(*echo))
        if (&echo->device().bus() == &bus) return echo;
    return nullptr;
}

uint32_t device_count(const Bus& bus) {
    IrqSpinLockGuard guard(registry.lock);
    uint32_t count = 0;
    for (EchoDevice* echo = registry.devices.front(); echo; echo = registry.devices.next_of(*echo))
        count += &echo->device().bus() == &bus;
    return count;
}

BusError EchoDevice::reopen(const ChannelOptions& options) {
    MutexGuard in_use(use_lock_);
    if (channel_) channel_->close();
    channel_ = nullptr;
    return Channel::open(device_, options, channel_);
}

EchoResult EchoDevice::send_request(uint64_t transaction_id, const void* payload, uint32_t size, uint64_t deadline_ns) {
    MutexGuard in_use(use_lock_);
    if (!channel_) return EchoResult::kClosed;
    return send_result(channel_->send_inband(transaction_id, payload, size, true, deadline_ns));
}

EchoResult EchoDevice::collect(uint64_t& transaction_id, void* payload, uint32_t capacity, uint32_t& size,
                               uint64_t deadline_ns) {
    MutexGuard in_use(use_lock_);
    return collect_locked(transaction_id, payload, capacity, size, deadline_ns);
}

EchoResult EchoDevice::collect_locked(uint64_t& transaction_id, void* payload, uint32_t capacity, uint32_t& size,
                                      uint64_t deadline_ns) {
    if (!channel_) return EchoResult::kClosed;
    for (;;) {
        ring::IncomingPacket packet;
        const RingError error = channel_->next(packet);
        if (error == RingError::kEmpty) {
            if (!channel_->wait_for_packets(deadline_ns)) return channel_->is_rescinded() ? EchoResult::kClosed : EchoResult::kTimeout;
            continue;
        }
        if (error != RingError::kOk) return EchoResult::kCorrupt;
        if (packet.type != ring::PacketType::kCompletion) {
            ++unexpected_;
            channel_->release();
            continue;
        }
        transaction_id = packet.transaction_id;
        size = packet.payload_size;
        const uint32_t copied = size < capacity ? size : capacity;
        if (copied) channel_->copy_payload(packet, 0, payload, copied);
        channel_->release();
        return EchoResult::kOk;
    }
}

uint32_t EchoDevice::send_requests(uint64_t first_id, uint32_t count, const void* payload, uint32_t size) {
    MutexGuard in_use(use_lock_);
    if (!channel_) return 0;
    if (count > kMaxBatch) count = kMaxBatch;
    const ring::PayloadPiece piece{payload, size};
    for (uint32_t i = 0; i < count; ++i) {
        batch_[i] = ring::OutgoingPacket{};
        batch_[i].type = ring::PacketType::kInBand;
        batch_[i].transaction_id = first_id + i;
        batch_[i].completion_requested = true;
        batch_[i].payload = &piece;
        batch_[i].payload_piece_count = size ? 1 : 0;
    }
    RingError error;
    return channel_->send_batch(batch_, count, error);
}

EchoResult EchoDevice::collect_available(uint32_t size, uint32_t& collected, uint64_t deadline_ns) {
    MutexGuard in_use(use_lock_);
    collected = 0;
    if (!channel_) return EchoResult::kClosed;
    const uint32_t padded = (size + ring::kPacketAlignment - 1) & ~(ring::kPacketAlignment - 1);
    EchoResult result = EchoResult::kOk;
    for (;;) {
        ring::IncomingPacket packet;
        const RingError error = channel_->next(packet);
        if (error == RingError::kEmpty) {
            if (collected != 0) break;
            if (!channel_->wait_for_packets(deadline_ns)) {
                result = channel_->is_rescinded() ? EchoResult::kClosed : EchoResult::kTimeout;
                break;
            }
            continue;
        }
        if (error != RingError::kOk) {
            result = EchoResult::kCorrupt;
            break;
        }
        if (packet.type != ring::PacketType::kCompletion) {
            ++unexpected_;
            continue;
        }
        // Read like a consumer would, then check the size.
        channel_->copy_payload(packet, 0, scratch_, packet.payload_size < service::kMaxPayload ? packet.payload_size : 0);
        if (packet.payload_size != padded) result = EchoResult::kMismatch;
        ++collected;
    }
    channel_->release();  // one index store for the whole batch
    return result;
}

EchoResult EchoDevice::round_trip(const void* payload, uint32_t size, uint64_t deadline_ns) {
    if (size > service::kMaxPayload) return EchoResult::kSendFailed;
    MutexGuard in_use(use_lock_);
    if (!channel_) return EchoResult::kClosed;
    const uint64_t id = next_transaction_id_++;
    const EchoResult sent = send_result(channel_->send_inband(id, payload, size, true, deadline_ns));
    if (sent != EchoResult::kOk) return sent;
    for (;;) {
        uint64_t completed_id;
        uint32_t completed_size;
        const EchoResult result = collect_locked(completed_id, scratch_, service::kMaxPayload, completed_size, deadline_ns);
        if (result != EchoResult::kOk) return result;
        if (completed_id != id) {
            ++unexpected_;
            continue;
        }
        // The ring carries payloads in whole 8-byte units, zero-padded: the echo comes back
        // padded too.
        const uint32_t padded = (size + ring::kPacketAlignment - 1) & ~(ring::kPacketAlignment - 1);
        bool same = completed_size == padded && memcmp(scratch_, payload, size) == 0;
        for (uint32_t i = size; same && i < padded; ++i) same = scratch_[i] == 0;
        return same ? EchoResult::kOk : EchoResult::kMismatch;
    }
}

}  // namespace hvkvm::guest::vmbus::echo
