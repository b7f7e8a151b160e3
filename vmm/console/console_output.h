// The VMM end of the guest console: standard output or a file chosen by console.output.
#pragma once

#include <filesystem>
#include <mutex>

#include "console/byte_sink.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class ConsoleOutput final : public devices::ByteSink {
public:
    static ConsoleOutput to_stdout();
    // Creates or truncates the file; throws HostError if it cannot.
    static ConsoleOutput to_file(const std::filesystem::path& path);

    ConsoleOutput(ConsoleOutput&& other) noexcept
        : owned_(std::move(other.owned_)), fd_(other.fd_), failed_(other.failed_) {}

    void write(std::span<const uint8_t> bytes) override;

private:
    ConsoleOutput(UniqueFd owned, int fd) : owned_(std::move(owned)), fd_(fd) {}

    UniqueFd owned_;  // empty for stdout, which the VMM does not own
    int fd_;
    std::mutex mutex_;
    bool failed_ = false;  // report a broken console once, then drop output
};

}  // namespace hvkvm::vmm
