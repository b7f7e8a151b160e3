#include "link/link_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "kvm/kvm_error.h"

namespace hvkvm::root::link {

const char* message_type_name(MessageType type) {
    switch (type) {
    case MessageType::kHello: return "hello";
    case MessageType::kReady: return "ready";
    case MessageType::kPostMessage: return "post-message";
    case MessageType::kOpenEventConnection: return "open-event-connection";
    case MessageType::kEventConnection: return "event-connection";
    case MessageType::kGetSintEventfd: return "get-sint-eventfd";
    case MessageType::kSintEventfd: return "sint-eventfd";
    case MessageType::kPing: return "ping";
    case MessageType::kPong: return "pong";
    case MessageType::kChannelState: return "channel-state";
    case MessageType::kStop: return "stop";
    case MessageType::kInjectFault: return "inject-fault";
    case MessageType::kControlRequest: return "control-request";
    case MessageType::kControlResponse: return "control-response";
    case MessageType::kKvpPreset: return "kvp-preset";
    case MessageType::kHeartbeat: return "heartbeat";
    case MessageType::kGuestLog: return "guest-log";
    case MessageType::kDisk: return "disk";
    }
    return "unknown";
}

void LinkSocket::send(MessageType type, std::span<const uint8_t> body, std::span<const int> fds) {
    if (fds.size() > kMaxFds) throw vmm::HostError(EINVAL, "too many file descriptors for one link message");
    uint8_t record[kMaxMessageBytes];
    const Header header{type, static_cast<uint32_t>(body.size())};
    std::memcpy(record, &header, sizeof header);
    std::memcpy(record + sizeof header, body.data(), body.size());
    iovec iov{record, sizeof header + body.size()};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
    if (!fds.empty()) {
        message.msg_control = control;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
        cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
        std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    }
    ssize_t sent;
    do sent = ::sendmsg(socket_.get(), &message, MSG_NOSIGNAL);
    while (sent < 0 && errno == EINTR);
    if (sent < 0) vmm::throw_errno(fmt::format("send {} on the root-partition link", message_type_name(type)));
}

std::optional<ReceivedMessage> LinkSocket::receive() {
    uint8_t record[kMaxMessageBytes + 1];
    iovec iov{record, sizeof record};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 4))] = {};
    msghdr message{};
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    ssize_t received;
    do received = ::recvmsg(socket_.get(), &message, MSG_CMSG_CLOEXEC);
    while (received < 0 && errno == EINTR);
    if (received < 0) vmm::throw_errno("receive on the root-partition link");
    if (received == 0) return std::nullopt;

    ReceivedMessage result;
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&message); cmsg; cmsg = CMSG_NXTHDR(&message, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            result.fds.emplace_back(fd);  // owned at once: closed on any error below
        }
    }
    if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
        throw vmm::HostError(EMSGSIZE, "a link message or its file descriptors were truncated");
    if (result.fds.size() > kMaxFds) throw vmm::HostError(EMSGSIZE, "a link message carried too many file descriptors");
    Header header;
    if (static_cast<size_t>(received) < sizeof header) throw vmm::HostError(EPROTO, "a link message shorter than its header");
    std::memcpy(&header, record, sizeof header);
    const uint32_t expected = body_size_of(header.type);
    if (expected == ~0u) throw vmm::HostError(EPROTO, fmt::format("a link message of unknown type {}", static_cast<uint32_t>(header.type)));
    if (header.body_size != expected || static_cast<size_t>(received) != sizeof header + expected)
        throw vmm::HostError(EPROTO, fmt::format("a {} link message of {} bytes (expected {})", message_type_name(header.type),
                                                 received - static_cast<ssize_t>(sizeof header), expected));
    result.type = header.type;
    result.body.assign(record + sizeof header, record + received);
    return result;
}

}  // namespace hvkvm::root::link
