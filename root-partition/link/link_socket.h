// Sending and receiving link messages (link_messages.h) with their file descriptors on a
// SOCK_SEQPACKET socket. Receiving validates the record: a known type, the exact body size, and
// at most kMaxFds descriptors (extra ones are closed, never leaked).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kvm/unique_fd.h"
#include "link/link_messages.h"

namespace hvkvm::root::link {

struct ReceivedMessage {
    MessageType type;
    std::vector<uint8_t> body;
    std::vector<vmm::UniqueFd> fds;

    template <typename Body>
    Body as() const {
        Body value{};
        __builtin_memcpy(&value, body.data(), sizeof value < body.size() ? sizeof value : body.size());
        return value;
    }
};

class LinkSocket {
public:
    explicit LinkSocket(vmm::UniqueFd socket) : socket_(std::move(socket)) {}

    int fd() const { return socket_.get(); }

    // Throws vmm::HostError on a send failure (the peer is gone: EPIPE, no SIGPIPE).
    void send(MessageType type, std::span<const uint8_t> body, std::span<const int> fds = {});
    template <typename Body>
    void send(MessageType type, const Body& body, std::span<const int> fds = {}) {
        send(type, {reinterpret_cast<const uint8_t*>(&body), sizeof body}, fds);
    }

    // The next message; nullopt at end of stream (the peer closed or died). Throws
    // vmm::HostError for a malformed record (wrong size, unknown type, truncated).
    std::optional<ReceivedMessage> receive();

private:
    vmm::UniqueFd socket_;
};

const char* message_type_name(MessageType type);

}  // namespace hvkvm::root::link
