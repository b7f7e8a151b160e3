#include "hypercalls/message_endpoint.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

SocketMessageEndpoint::SocketMessageEndpoint(UniqueFd socket) : socket_(std::move(socket)) {
    const int flags = ::fcntl(socket_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(socket_.get(), F_SETFL, flags | O_NONBLOCK) < 0)
        throw_errno("make a message socket non-blocking");
}

abi::hv::Status SocketMessageEndpoint::deliver(uint32_t connection_id, uint32_t message_type,
                                               std::span<const uint8_t> payload) {
    PostedMessage message{};
    message.connection_id = connection_id;
    message.message_type = message_type;
    message.payload_size = static_cast<uint32_t>(payload.size());
    std::memcpy(message.payload, payload.data(), payload.size());
    // MSG_NOSIGNAL: a receiver that has gone away is an error for this message, not SIGPIPE.
    const ssize_t sent =
        ::send(socket_.get(), &message, kPostedMessageHeaderSize + payload.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent == static_cast<ssize_t>(kPostedMessageHeaderSize + payload.size())) return abi::hv::Status::kSuccess;
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS))
        return abi::hv::Status::kInsufficientBuffers;
    // The receiver is gone (EPIPE, ECONNRESET): the connection no longer exists for the guest.
    return abi::hv::Status::kInvalidConnectionId;
}

}  // namespace hvkvm::vmm
