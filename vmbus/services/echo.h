// The echo service: an hvkvm channel (not a Hyper-V one) for testing and benchmarking VMBus itself.
// The guest (VSC) sends in-band packets with "completion requested"; the host (VSP) answers each
// with a completion packet carrying the same transaction id and the same payload, draining
// everything available before it signals once. Compiled by host and guest.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "vmbus/protocol/channel_messages.h"

namespace hvkvm::vmbus::services::echo {

// {c4b0e2a5-9f1d-4e7b-8a3c-5d6e7f809102}
inline constexpr protocol::Guid kInterfaceType = {0xc4b0e2a5, 0x9f1d, 0x4e7b, {0x8a, 0x3c, 0x5d, 0x6e, 0x7f, 0x80, 0x91, 0x02}};
// {5e1f0c3a-77b2-4d19-9c61-0a8e4f2b6d13}: the one instance the root partition offers.
inline constexpr protocol::Guid kInstance = {0x5e1f0c3a, 0x77b2, 0x4d19, {0x9c, 0x61, 0x0a, 0x8e, 0x4f, 0x2b, 0x6d, 0x13}};

// Payload limit of one echo packet (the rings the guest opens must fit a packet plus headers).
inline constexpr uint32_t kMaxPayload = 16 * 1024;

// Control requests, for the guest's tests of what only the host can start: an in-band packet
// *without* "completion requested" whose payload is exactly a ControlRequest (8 bytes). Nothing
// answers it; a VSP ignores a command it does not know and any other packet without "completion
// requested".
inline constexpr uint32_t kControlMagic = 0x4c544345;  // "ECTL"
enum class ControlCommand : uint32_t {
    // Rescind the echo offer (RESCIND_CHANNELOFFER), and offer it again once the guest has sent
    // RELID_RELEASED for it.
    kRescindAndOffer = 1,
};
struct ControlRequest {
    uint32_t magic;
    ControlCommand command;
};
static_assert(sizeof(ControlRequest) == 8);
static_assert(offsetof(ControlRequest, command) == 4);

}  // namespace hvkvm::vmbus::services::echo
