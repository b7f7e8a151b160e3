// Message endpoints: where HvPostMessage delivers. The cross-process one never blocks the posting
// vCPU: a full receiver is HV_STATUS_INSUFFICIENT_BUFFERS, a vanished one an invalid connection.
#include <sys/socket.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <string>

#include "hypercalls/message_endpoint.h"

using namespace hvkvm;
using namespace hvkvm::vmm;
using abi::hv::Status;

namespace {

struct SocketPair {
    UniqueFd vmm_end, root_end;
    SocketPair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) == 0);
        vmm_end.reset(fds[0]);
        root_end.reset(fds[1]);
    }
};

std::span<const uint8_t> bytes(const std::string& text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace

TEST_CASE("a socket endpoint sends one datagram per message", "[connections]") {
    SocketPair pair;
    SocketMessageEndpoint endpoint(std::move(pair.vmm_end));
    CHECK(endpoint.deliver(0x2001, 7, bytes("hello")) == Status::kSuccess);
    const std::string largest(abi::hv::kMessagePayloadMax, 'x');
    CHECK(endpoint.deliver(0x2001, 8, bytes(largest)) == Status::kSuccess);

    PostedMessage message{};
    REQUIRE(::recv(pair.root_end.get(), &message, sizeof message, 0) == kPostedMessageHeaderSize + 5);
    CHECK(message.connection_id == 0x2001);
    CHECK(message.message_type == 7);
    CHECK(message.payload_size == 5);
    CHECK(std::memcmp(message.payload, "hello", 5) == 0);
    REQUIRE(::recv(pair.root_end.get(), &message, sizeof message, 0) == static_cast<ssize_t>(sizeof message));
    CHECK(message.payload_size == abi::hv::kMessagePayloadMax);
}

TEST_CASE("a full receiver makes the endpoint answer insufficient buffers without blocking", "[connections]") {
    SocketPair pair;
    SocketMessageEndpoint endpoint(std::move(pair.vmm_end));
    const std::string payload(200, 'p');
    uint32_t delivered = 0;
    Status status = Status::kSuccess;
    while ((status = endpoint.deliver(1, 1, bytes(payload))) == Status::kSuccess && delivered < 1'000'000) ++delivered;
    CHECK(status == Status::kInsufficientBuffers);
    CHECK(delivered > 0);
    // Once the receiver drains one, there is room again.
    PostedMessage message{};
    REQUIRE(::recv(pair.root_end.get(), &message, sizeof message, 0) > 0);
    CHECK(endpoint.deliver(1, 1, bytes(payload)) == Status::kSuccess);
}

TEST_CASE("a receiver that has gone away is an invalid connection, not SIGPIPE", "[connections]") {
    SocketPair pair;
    SocketMessageEndpoint endpoint(std::move(pair.vmm_end));
    pair.root_end.reset();
    CHECK(endpoint.deliver(1, 1, bytes("x")) == Status::kInvalidConnectionId);
}

TEST_CASE("a local endpoint passes the message to its handler", "[connections]") {
    std::string seen;
    LocalMessageEndpoint endpoint([&](uint32_t type, std::span<const uint8_t> payload) {
        seen = std::to_string(type) + ":" + std::string(payload.begin(), payload.end());
        return Status::kSuccess;
    });
    CHECK(endpoint.deliver(5, 3, bytes("abc")) == Status::kSuccess);
    CHECK(seen == "3:abc");
}
