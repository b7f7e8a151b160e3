#include "services/ic/shutdown.h"

#include <algorithm>
#include <cstdio>
#include <fmt/format.h>

namespace hvkvm::root::ic {

bool ShutdownService::control(const nlohmann::json& request, ControlReply& reply, Clock::time_point now) {
    if (request.value("command", "") != "shutdown") return false;
    ControlReply answer = std::move(reply);
    if (!is_ready()) {
        answer({{"ok", false}, {"error", "no shutdown service: the guest has not opened the shutdown channel"}});
        return true;
    }
    if (!is_idle()) {
        answer({{"ok", false}, {"error", "a shutdown request is already waiting for the guest's answer"}});
        return true;
    }
    // The guest learns the deadline in whole seconds, rounded up.
    const int64_t timeout_ms = request.value("timeout_ms", int64_t{0});
    wire::ShutdownMessage message{};
    message.reason_code = wire::kShutdownReasonPlanned;
    message.timeout_seconds = static_cast<uint32_t>(std::clamp<int64_t>((timeout_ms + 999) / 1000, 0, 600));
    message.flags = 0;  // neither forced, nor restart, nor hibernate
    std::snprintf(message.message, sizeof message.message, "%s", "hvkvm: shutdown requested by the host");
    if (!send_fixed_request(&message, sizeof message, now)) {
        answer({{"ok", false}, {"error", "the shutdown request could not be sent"}});
        return true;
    }
    waiting_ = std::move(answer);
    return true;
}

bool ShutdownService::on_answer(const wire::Message& answer, Clock::time_point) {
    // Linux and Windows echo the request's body; only the status matters.
    ControlReply reply = std::move(waiting_);
    waiting_ = nullptr;
    if (answer.header.status == wire::kStatusSuccess) {
        ++accepted_;
        if (reply) reply({{"ok", true}, {"accepted", true}});
    } else {
        ++refused_;
        if (reply)
            reply({{"ok", false},
                   {"error", fmt::format("the guest refused to shut down (status {:#x})", answer.header.status)}});
    }
    return true;
}

void ShutdownService::on_failed(const char* why, Clock::time_point) {
    ControlReply reply = std::move(waiting_);
    waiting_ = nullptr;
    if (reply) reply({{"ok", false}, {"error", fmt::format("shutdown request: {}", why)}});
}

nlohmann::json ShutdownService::describe() const {
    nlohmann::json description = IcService::describe();
    description["accepted"] = accepted_;
    description["refused"] = refused_;
    return description;
}

}  // namespace hvkvm::root::ic
