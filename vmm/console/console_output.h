// The VMM end of the guest console: standard output or a file chosen by console.output.
//
// Console output never blocks a vCPU or the stop path. write() only appends to a bounded backlog
// (kBacklogLimit); one writer thread per console moves it to the file descriptor. When nobody
// reads (a full pipe) the backlog fills and further output is dropped, with one warning; when the
// reader has gone (EPIPE) everything after is dropped too: SIGPIPE is blocked in the writer
// thread, so it cannot kill the VMM. finish() gives the writer a bounded time to drain at the end
// of the run, then interrupts its write (a signal, SIGUSR2, whose empty handler makes write()
// return); how much was dropped is logged once.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>

#include "console/byte_sink.h"

namespace hvkvm::vmm {

class ConsoleOutput final : public devices::ByteSink {
public:
    static constexpr size_t kBacklogLimit = 1 << 20;
    static constexpr std::chrono::milliseconds kDrainLimit{1000};

    static ConsoleOutput to_stdout();
    // Creates or truncates the file; throws HostError if it cannot.
    static ConsoleOutput to_file(const std::filesystem::path& path);

    ConsoleOutput(ConsoleOutput&& other) noexcept;
    ConsoleOutput& operator=(ConsoleOutput&&) = delete;
    ~ConsoleOutput() override;

    // From any thread; never waits for the console itself.
    void write(std::span<const uint8_t> bytes) override;
    // Stops taking output and lets the writer drain for up to `drain_limit`; whatever is left is
    // dropped. Later writes are dropped (and counted). Called once the vCPUs have stopped;
    // the destructor calls it if nobody did.
    void finish(std::chrono::milliseconds drain_limit = kDrainLimit);
    // Bytes the guest wrote that never reached the console.
    uint64_t dropped_bytes() const;

private:
    class Writer;
    explicit ConsoleOutput(std::unique_ptr<Writer> writer);

    std::unique_ptr<Writer> writer_;
};

}  // namespace hvkvm::vmm
