#include "services/echo_vsp.h"

#include <spdlog/spdlog.h>

#include "vmbus/services/echo.h"

namespace hvkvm::root {

using vmbus::ring::RingError;
namespace echo = vmbus::services::echo;

vmbus::channel::OfferInfo EchoVsp::offer() const {
    vmbus::channel::OfferInfo info;
    info.interface_type = echo::kInterfaceType;
    info.interface_instance = echo::kInstance;
    return info;
}

nlohmann::json EchoVsp::describe() const {
    return {{"echoed", echoed_},
            {"control_requests", control_requests_},
            {"poll_window_us", std::chrono::duration_cast<std::chrono::microseconds>(poll_.length()).count()},
            {"poll_hits", poll_.hits()},
            {"poll_misses", poll_.misses()},
            {"poll_skipped", poll_.skipped()}};
}

void EchoVsp::on_guest_signal() {
    // Drain with the guest's signals masked; then poll for a while, still masked; before going back
    // to sleep, unmask and look once more for packets that arrived meanwhile (the lost-wakeup
    // check). Blocked on a full outgoing ring, stay masked: the guest signals when it frees the
    // space asked for.
    incoming().mask_signals();
    for (;;) {
        const Progress progress = echo_available();
        if (progress != Progress::kDrained) return;
        if (rescind_requested_) {
            // The channel closes with the rescind: nothing to wait for on it any more.
            rescind_requested_ = false;
            rescind_and_offer_again();
            return;
        }
        if (poll_.wait_for_data(incoming())) continue;
        if (!incoming().arm_signal()) return;
    }
}

// Counters belong to one channel's life (the guest reopens the channel with other rings).
bool EchoVsp::on_open(const vmbus::channel::OpenRequest&) {
    poll_ = PollWindow(poll_.length());
    echoed_ = 0;
    control_requests_ = 0;
    rescind_requested_ = false;
    return true;
}

// Says what the poll window did for the channel that echoed something (tests/bench/vmbus_echo.sh
// reads it).
void EchoVsp::on_close() {
    if (echoed_ == 0) return;
    spdlog::info("echo: channel closed after {} packets echoed; poll window {} µs: {} hits, {} misses, {} skipped",
                 echoed_, std::chrono::duration_cast<std::chrono::microseconds>(poll_.length()).count(), poll_.hits(),
                 poll_.misses(), poll_.skipped());
}

void EchoVsp::take_control_request(const vmbus::ring::IncomingPacket& packet) {
    echo::ControlRequest request{};
    if (packet.type != vmbus::ring::PacketType::kInBand || packet.payload_size != sizeof request) return;
    if (incoming().copy_payload(packet, 0, &request, sizeof request) != RingError::kOk) return;
    if (request.magic != echo::kControlMagic) return;
    ++control_requests_;
    if (request.command == echo::ControlCommand::kRescindAndOffer) rescind_requested_ = true;
}

// Echoes what is in the incoming ring now.
EchoVsp::Progress EchoVsp::echo_available() {
    bool signal_for_space = false, blocked = false;
    for (;;) {
        vmbus::ring::IncomingPacket packet;
        const RingError error = incoming().next(packet);
        if (error == RingError::kEmpty) break;
        if (error != RingError::kOk) {
            fail(vmbus::ring::ring_error_name(error));
            return Progress::kFailed;
        }
        if (!packet.completion_requested()) {
            take_control_request(packet);
        } else if (packet.type == vmbus::ring::PacketType::kInBand && packet.payload_size <= payload_.size()) {
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
            ++echoed_;
        }
        // Release packet by packet (one index store each) so that a full outgoing ring never
        // forces an already answered packet to be served twice; signal at most once below.
        signal_for_space |= incoming().release();
    }
    // Also collects the signal owed when a full ring published the answers before it.
    const bool signal_for_answers = outgoing().publish();
    if (signal_for_answers || signal_for_space) signal_guest();
    return blocked ? Progress::kBlocked : Progress::kDrained;
}

}  // namespace hvkvm::root
