// Where HvPostMessage delivers the messages of a connection. The hypervisor calls deliver() on the
// posting vCPU's thread, so an endpoint never blocks: when its receiver cannot take more it
// answers kInsufficientBuffers, as Hyper-V does when the target's message queue is full, and the
// guest retries later. Two implementations:
//   LocalMessageEndpoint   a handler in this process (which must itself not block);
//   SocketMessageEndpoint  one datagram per message on a non-blocking SOCK_SEQPACKET socket whose
//                          other end is in another process (the root partition), which reads
//                          PostedMessage records from it.
// Event connections need no such type: they are eventfds, signalled in the host kernel by an
// ioeventfd doorbell (or by the VMM), and an eventfd can be handed to another process as it is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>

#include "hvkvm/abi/hypercall.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class MessageEndpoint {
public:
    virtual ~MessageEndpoint() = default;
    // `payload` holds at most abi::hv::kMessagePayloadMax bytes (validated by the hypervisor).
    virtual abi::hv::Status deliver(uint32_t connection_id, uint32_t message_type, std::span<const uint8_t> payload) = 0;
};

class LocalMessageEndpoint final : public MessageEndpoint {
public:
    using Handler = std::function<abi::hv::Status(uint32_t message_type, std::span<const uint8_t> payload)>;
    explicit LocalMessageEndpoint(Handler handler) : handler_(std::move(handler)) {}
    abi::hv::Status deliver(uint32_t, uint32_t message_type, std::span<const uint8_t> payload) override {
        return handler_(message_type, payload);
    }

private:
    Handler handler_;
};

// The datagram a SocketMessageEndpoint sends: the fixed header, then payload_size bytes.
struct PostedMessage {
    uint32_t connection_id;
    uint32_t message_type;
    uint32_t payload_size;
    uint32_t reserved;
    uint8_t payload[abi::hv::kMessagePayloadMax];
};
static_assert(offsetof(PostedMessage, connection_id) == 0);
static_assert(offsetof(PostedMessage, message_type) == 4);
static_assert(offsetof(PostedMessage, payload_size) == 8);
static_assert(offsetof(PostedMessage, payload) == 16);
static_assert(sizeof(PostedMessage) == 16 + abi::hv::kMessagePayloadMax);
inline constexpr size_t kPostedMessageHeaderSize = offsetof(PostedMessage, payload);

class SocketMessageEndpoint final : public MessageEndpoint {
public:
    // Takes a connected SOCK_SEQPACKET socket and makes it non-blocking.
    explicit SocketMessageEndpoint(UniqueFd socket);
    abi::hv::Status deliver(uint32_t connection_id, uint32_t message_type, std::span<const uint8_t> payload) override;

private:
    UniqueFd socket_;
};

}  // namespace hvkvm::vmm
