#include "log/guest_log_printer.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace hvkvm::vmm {
namespace {

std::shared_ptr<spdlog::logger> stderr_logger() {
    // Not registered with spdlog (several printers may exist); plain, no colour.
    auto logger = std::make_shared<spdlog::logger>("guest-log", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    logger->set_pattern("%v");
    return logger;
}

const char* level_prefix(uint32_t level) {
    switch (level) {
    case 0: return "";
    case 1: return "warning: ";
    default: return "error: ";
    }
}

}  // namespace

GuestLogPrinter::GuestLogPrinter(LogRateLimiter::Policy policy) : GuestLogPrinter(policy, stderr_logger()) {}

GuestLogPrinter::GuestLogPrinter(LogRateLimiter::Policy policy, std::shared_ptr<spdlog::logger> logger)
    : logger_(std::move(logger)), limiter_(policy, LogRateLimiter::Clock::now()) {}

std::string GuestLogPrinter::sanitize(std::string_view text) {
    std::string shown;
    const size_t kept = std::min(text.size(), kMaxPrintedBytes);
    shown.reserve(kept + 32);
    for (size_t i = 0; i < kept; ++i) {
        const auto byte = static_cast<unsigned char>(text[i]);
        shown.push_back(byte >= 0x20 && byte < 0x7f ? static_cast<char>(byte) : '?');
    }
    if (text.size() > kept) shown += fmt::format("... ({} more bytes)", text.size() - kept);
    return shown;
}

void GuestLogPrinter::print(uint32_t level, uint64_t lost, std::string_view text) {
    uint64_t not_shown;
    {
        std::lock_guard lock(mutex_);
        lost_ += lost;
        const auto held_back = limiter_.admit(LogRateLimiter::Clock::now());
        if (!held_back) return;
        not_shown = lost_ + *held_back;
        lost_ = 0;
        ++printed_;
    }
    std::string line = fmt::format("guest-log: {}{}", level_prefix(level), sanitize(text));
    if (not_shown) line += fmt::format(" ({} earlier lines not shown)", not_shown);
    logger_->info("{}", line);
}

void GuestLogPrinter::report_suppressed() {
    uint64_t untold;
    {
        std::lock_guard lock(mutex_);
        untold = lost_ + limiter_.take_suppressed();
        lost_ = 0;
    }
    if (untold) logger_->info("guest-log: ({} more lines not shown)", untold);
}

uint64_t GuestLogPrinter::printed() const {
    std::lock_guard lock(mutex_);
    return printed_;
}

}  // namespace hvkvm::vmm
