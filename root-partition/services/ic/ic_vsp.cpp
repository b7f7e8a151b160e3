#include "services/ic/ic_vsp.h"

#include <cstring>

namespace hvkvm::root {

using vmbus::ring::RingError;
namespace wire = ic::wire;

IcVsp::IcVsp(VspServices& services, std::unique_ptr<ic::IcService> service)
    : Vsp(services),
      service_(std::move(service)),
      timer_(services.loop, [this] {
          service_->on_timer(ic::Clock::now());
          schedule();
      }),
      payload_(wire::kMaxPacketPayload) {}

// The base class closes the channel in its destructor, after this one: close it while the
// service still exists.
IcVsp::~IcVsp() { close(); }

vmbus::channel::OfferInfo IcVsp::offer() const {
    vmbus::channel::OfferInfo info;
    info.interface_type = service_->service().interface_type;
    info.interface_instance = service_->service().instance;
    info.flags = wire::kOfferFlags;
    std::memcpy(info.user_defined, &wire::kPipeTypeMessage, sizeof wire::kPipeTypeMessage);
    return info;
}

bool IcVsp::control(const nlohmann::json& request, ControlReply& reply) {
    const bool taken = service_->control(request, reply, ic::Clock::now());
    schedule();  // the request may have sent something that now has a deadline
    return taken;
}

nlohmann::json IcVsp::describe() const {
    nlohmann::json description = service_->describe();
    description["dropped_packets"] = dropped_packets_;
    return description;
}

bool IcVsp::on_open(const vmbus::channel::OpenRequest&) {
    service_->open(*this, ic::Clock::now());
    schedule();
    return true;
}

void IcVsp::on_close() {
    service_->close();
    timer_.disarm();
}

void IcVsp::on_guest_signal() {
    // As the echo VSP: drain with the guest's signals masked, then unmask and look once more.
    incoming().mask_signals();
    do {
        if (!drain()) {
            fail("the guest's ring is corrupt");
            service_->close();
            timer_.disarm();
            return;
        }
    } while (incoming().arm_signal());
    schedule();
}

bool IcVsp::drain() {
    bool signal_for_space = false;
    for (;;) {
        vmbus::ring::IncomingPacket packet;
        const RingError error = incoming().next(packet);
        if (error == RingError::kEmpty) break;
        if (error != RingError::kOk) return false;
        const bool usable = packet.type == vmbus::ring::PacketType::kInBand && packet.payload_size <= payload_.size();
        if (usable && incoming().copy_payload(packet, 0, payload_.data(), packet.payload_size) != RingError::kOk)
            return false;
        // Release before handling: the service may answer at once, and the space is free now.
        signal_for_space |= incoming().release();
        if (usable) service_->on_packet(packet.transaction_id, payload_.data(), packet.payload_size, ic::Clock::now());
        else ++dropped_packets_;
    }
    if (signal_for_space) signal_guest();
    return true;
}

bool IcVsp::send(uint64_t transaction_id, const wire::Packet& packet) {
    if (outgoing().write_inband(transaction_id, packet.bytes, packet.size, /*completion_requested=*/false) != RingError::kOk)
        return false;
    if (outgoing().publish()) signal_guest();
    return true;
}

void IcVsp::schedule() {
    if (const auto deadline = service_->next_deadline()) timer_.arm_at(*deadline);
    else timer_.disarm();
}

}  // namespace hvkvm::root
