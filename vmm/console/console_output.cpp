#include "console/console_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

ConsoleOutput ConsoleOutput::to_stdout() { return ConsoleOutput(UniqueFd(), STDOUT_FILENO); }

ConsoleOutput ConsoleOutput::to_file(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd.valid()) throw_errno(fmt::format("cannot open console file {}", path.string()));
    const int raw = fd.get();
    return ConsoleOutput(std::move(fd), raw);
}

void ConsoleOutput::write(std::span<const uint8_t> bytes) {
    std::lock_guard lock(mutex_);
    while (!bytes.empty() && !failed_) {
        ssize_t written = ::write(fd_, bytes.data(), bytes.size());
        if (written < 0 && errno == EINTR) continue;
        if (written <= 0) {
            spdlog::warn("console output failed ({}); further guest console output is dropped",
                         std::strerror(errno));
            failed_ = true;
            return;
        }
        bytes = bytes.subspan(static_cast<size_t>(written));
    }
}

}  // namespace hvkvm::vmm
