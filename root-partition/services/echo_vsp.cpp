#include "services/echo_vsp.h"

#include "vmbus/services/echo.h"

namespace hvkvm::root {

using vmbus::ring::RingError;

vmbus::channel::OfferInfo EchoVsp::offer() const {
    vmbus::channel::OfferInfo info;
    info.interface_type = vmbus::services::echo::kInterfaceType;
    info.interface_instance = vmbus::services::echo::kInstance;
    return info;
}

void EchoVsp::on_guest_signal() {
    // Drain with the guest's signals masked; before going back to sleep, unmask and look once
    // more for packets that arrived meanwhile (the lost-wakeup check). Blocked on a full outgoing
    // ring, stay masked: the guest signals when it frees the space asked for.
    incoming().mask_signals();
    for (;;) {
        const Progress progress = echo_available();
        if (progress != Progress::kDrained || !incoming().arm_signal()) return;
    }
}

// Echoes what is in the incoming ring now.
EchoVsp::Progress EchoVsp::echo_available() {
    bool answered = false, signal_for_space = false, blocked = false;
    for (;;) {
        vmbus::ring::IncomingPacket packet;
        const RingError error = incoming().next(packet);
        if (error == RingError::kEmpty) break;
        if (error != RingError::kOk) {
            fail(vmbus::ring::ring_error_name(error));
            return Progress::kFailed;
        }
        if (packet.type == vmbus::ring::PacketType::kInBand && packet.completion_requested() &&
            packet.payload_size <= payload_.size()) {
            if (incoming().copy_payload(packet, 0, payload_.data(), packet.payload_size) != RingError::kOk) {
                fail("a packet's payload could not be read");
                return Progress::kFailed;
            }
            const RingError written = outgoing().write_completion(packet.transaction_id, payload_.data(), packet.payload_size);
            if (written == RingError::kFull) {
                // Wait for the guest to make room: this packet stays in the incoming ring (every
                // earlier one was released) and is served on the guest's next signal.
                incoming().rewind();
                blocked = true;
                break;
            }
            if (written != RingError::kOk) {
                fail(vmbus::ring::ring_error_name(written));
                return Progress::kFailed;
            }
            answered = true;
            ++echoed_;
        }
        // Release packet by packet (one index store each) so that a full outgoing ring never
        // forces an already answered packet to be served twice; signal at most once below.
        signal_for_space |= incoming().release();
    }
    const bool signal_for_answers = answered && outgoing().publish();
    if (signal_for_answers || signal_for_space) signal_guest();
    return blocked ? Progress::kBlocked : Progress::kDrained;
}

}  // namespace hvkvm::root
