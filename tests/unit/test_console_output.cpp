// The guest console's backlog and writer (vmm/console): output never blocks its producer, and a
// console nobody reads, or whose reader has gone, costs a bounded wait at the end.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "console/console_buffer.h"
#include "console/console_output.h"

using namespace hvkvm::vmm;
using namespace std::chrono_literals;

namespace {

std::span<const uint8_t> bytes_of(const std::string& text) {
    return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

std::string drain(ConsoleBuffer& buffer) {
    std::string out;
    while (!buffer.empty()) {
        const auto chunk = buffer.oldest();
        out.append(chunk.begin(), chunk.end());
        buffer.consume(chunk.size());
    }
    return out;
}

// A pipe whose write end the console opens by name, as console.output would.
struct Pipe {
    int read_end = -1, write_end = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        read_end = fds[0], write_end = fds[1];
    }
    ~Pipe() {
        if (read_end >= 0) ::close(read_end);
        if (write_end >= 0) ::close(write_end);
    }
    std::string path() const { return "/proc/self/fd/" + std::to_string(write_end); }
    std::string read_all() {
        std::string all;
        char buffer[65536];
        for (ssize_t got; (got = ::read(read_end, buffer, sizeof buffer)) > 0;) all.append(buffer, static_cast<size_t>(got));
        return all;
    }
};

}  // namespace

TEST_CASE("the console backlog takes a write that fits exactly and drops one byte more whole", "[console]") {
    ConsoleBuffer buffer(16);
    CHECK(buffer.append(bytes_of("0123456789")));
    CHECK_FALSE(buffer.append(bytes_of("abcdefg")));  // 17 bytes in all: dropped whole
    CHECK(buffer.size() == 10);
    CHECK(buffer.append(bytes_of("abcdef")));         // exactly 16
    CHECK(drain(buffer) == "0123456789abcdef");
}

TEST_CASE("the console backlog wraps around and keeps the order", "[console]") {
    ConsoleBuffer buffer(8);
    REQUIRE(buffer.append(bytes_of("abcdef")));
    buffer.consume(4);
    REQUIRE(buffer.append(bytes_of("ghijkl")));  // wraps: "ef" + "ghijkl"
    CHECK(buffer.oldest().size() == 4);          // the contiguous part up to the end of the ring
    CHECK(drain(buffer) == "efghijkl");
    CHECK(buffer.append(bytes_of("12345678")));
    buffer.consume(100);
    CHECK(buffer.empty());
}

TEST_CASE("console output reaches a reader in order", "[console]") {
    Pipe pipe;
    std::string expected, got;
    std::thread reader;
    {
        ConsoleOutput console = ConsoleOutput::to_file(pipe.path());
        ::close(pipe.write_end);  // the console holds its own descriptor of the pipe
        pipe.write_end = -1;
        reader = std::thread([&] { got = pipe.read_all(); });
        for (int line = 0; line < 20000; ++line) {
            const std::string text = "line " + std::to_string(line) + "\n";
            console.write(bytes_of(text));
            expected += text;
        }
        console.finish();
        CHECK(console.dropped_bytes() == 0);
    }
    reader.join();  // end of file once the console closed its descriptor
    CHECK(got == expected);
}

TEST_CASE("a console nobody reads neither blocks its writers nor the end of the run", "[console]") {
    // Shared with the writing thread: if writes block (the bug this guards against), the test
    // fails and leaves that thread blocked on a pipe that stays open, rather than pulling its
    // objects from under it.
    auto pipe = std::make_shared<Pipe>();
    auto console = std::make_shared<ConsoleOutput>(ConsoleOutput::to_file(pipe->path()));
    auto writes_returned = std::make_shared<std::atomic<bool>>(false);
    const std::string line(200, 'x');
    constexpr uint64_t kLines = 40000;  // 8 MB: far more than the pipe and the backlog hold
    std::thread([pipe, console, writes_returned, line] {
        for (uint64_t i = 0; i < kLines; ++i) console->write(bytes_of(line));
        *writes_returned = true;
    }).detach();
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (!*writes_returned && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(10ms);
    REQUIRE(*writes_returned);

    const auto start = std::chrono::steady_clock::now();
    console->finish(200ms);
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited < 2s);
    // Everything beyond the pipe's own buffer and the backlog was dropped and counted.
    CHECK(console->dropped_bytes() >= kLines * line.size() - ConsoleOutput::kBacklogLimit - (1 << 20));
    CHECK(console->dropped_bytes() < kLines * line.size());
}

TEST_CASE("a console whose reader has gone drops output instead of dying of SIGPIPE", "[console]") {
    Pipe pipe;
    ConsoleOutput console = ConsoleOutput::to_file(pipe.path());
    ::close(pipe.read_end);
    pipe.read_end = -1;
    const std::string line = "nobody reads this\n";
    for (int i = 0; i < 1000; ++i) console.write(bytes_of(line));
    console.finish(1s);
    CHECK(console.dropped_bytes() == 1000 * line.size());
    console.write(bytes_of(line));  // after finish: dropped, counted
    CHECK(console.dropped_bytes() == 1001 * line.size());
}
