// The VMM <-> root-partition link: records with their file descriptors, and what a receiver
// refuses (wrong sizes, unknown types, too many descriptors) without leaking descriptors.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>

#include "kvm/kvm_error.h"
#include "link/link_socket.h"

using namespace hvkvm;
using namespace hvkvm::root::link;

namespace {

struct Pair {
    vmm::UniqueFd a, b;
    Pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
        a.reset(fds[0]);
        b.reset(fds[1]);
    }
};

int open_fds() {
    int count = 0;
    for (int fd = 0; fd < 1024; ++fd) count += ::fcntl(fd, F_GETFD) >= 0;
    return count;
}

}  // namespace

TEST_CASE("link messages carry their body and file descriptors", "[root-link]") {
    Pair pair;
    LinkSocket vmm(std::move(pair.a)), root(std::move(pair.b));
    vmm::UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    const SintEventfd reply{3, 2, 0, 0};
    const int fds[] = {event.get()};
    vmm.send(MessageType::kSintEventfd, reply, fds);
    auto message = root.receive();
    REQUIRE(message);
    CHECK(message->type == MessageType::kSintEventfd);
    CHECK(message->as<SintEventfd>().vp == 3);
    REQUIRE(message->fds.size() == 1);
    const uint64_t one = 1;
    REQUIRE(::write(message->fds[0].get(), &one, sizeof one) == sizeof one);  // the same eventfd
    uint64_t value = 0;
    REQUIRE(::read(event.get(), &value, sizeof value) == sizeof value);
    CHECK(value == 1);
    vmm.send(MessageType::kStop, std::span<const uint8_t>{});
    CHECK(root.receive()->type == MessageType::kStop);
}

TEST_CASE("the end of the link is reported, not an error", "[root-link]") {
    Pair pair;
    LinkSocket root(std::move(pair.b));
    pair.a.reset();
    CHECK_FALSE(root.receive());
}

TEST_CASE("malformed link records are refused and their descriptors closed", "[root-link]") {
    const int before = open_fds();
    {
        Pair pair;
        LinkSocket root(std::move(pair.b));
        auto raw_send = [&](const void* bytes, size_t size, int fd_count) {
            vmm::UniqueFd extra[kMaxFds + 1];
            int fds[kMaxFds + 1];
            for (int i = 0; i < fd_count; ++i) extra[i].reset(::eventfd(0, EFD_CLOEXEC)), fds[i] = extra[i].get();
            iovec iov{const_cast<void*>(bytes), size};
            msghdr message{};
            message.msg_iov = &iov;
            message.msg_iovlen = 1;
            alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFds + 1))] = {};
            if (fd_count) {
                message.msg_control = control;
                message.msg_controllen = CMSG_SPACE(sizeof(int) * fd_count);
                cmsghdr* cmsg = CMSG_FIRSTHDR(&message);
                cmsg->cmsg_level = SOL_SOCKET;
                cmsg->cmsg_type = SCM_RIGHTS;
                cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fd_count);
                std::memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * fd_count);
            }
            REQUIRE(::sendmsg(pair.a.get(), &message, 0) >= 0);
        };
        struct {
            Header header;
            Ping body;
        } ping{{MessageType::kPing, sizeof(Ping)}, {7}};
        raw_send(&ping, sizeof ping, 0);
        CHECK(root.receive()->as<Ping>().sequence == 7);  // well-formed: accepted

        ping.header.body_size = sizeof(Ping) + 1;  // declares a body size the type does not have
        raw_send(&ping, sizeof ping, 1);
        CHECK_THROWS_AS(root.receive(), vmm::HostError);
        ping.header.body_size = sizeof(Ping);
        raw_send(&ping, sizeof ping - 1, 1);  // truncated body
        CHECK_THROWS_AS(root.receive(), vmm::HostError);
        ping.header.type = static_cast<MessageType>(99);  // unknown type
        raw_send(&ping, sizeof ping, 1);
        CHECK_THROWS_AS(root.receive(), vmm::HostError);
        ping.header.type = MessageType::kPing;
        raw_send(&ping, sizeof ping, kMaxFds);  // the most descriptors a record may carry
        CHECK(root.receive()->fds.size() == kMaxFds);
        raw_send(&ping, sizeof ping, kMaxFds + 1);  // one more
        CHECK_THROWS_AS(root.receive(), vmm::HostError);
        raw_send(&ping, 4, 0);  // shorter than a header
        CHECK_THROWS_AS(root.receive(), vmm::HostError);
    }
    CHECK(open_fds() == before);  // nothing leaked, refused or not
}
