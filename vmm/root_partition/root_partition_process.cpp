#include "root_partition/root_partition_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "hvkvm/abi/hypercall.h"
#include "hvkvm/abi/synic.h"
#include "config/config.h"
#include "hypercalls/hypervisor.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm.h"
#include "kvm/kvm_error.h"
#include "synic/synic.h"
#include "vmbus/protocol/channel_messages.h"

namespace hvkvm::vmm {
namespace {

using root::link::MessageType;
namespace link = root::link;

UniqueFd open_pidfd(pid_t pid) {
    UniqueFd fd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!fd.valid()) throw_errno("pidfd_open for the root partition");
    return fd;
}

const char* phase_name(link::ChannelPhase phase) {
    switch (phase) {
    case link::ChannelPhase::kOffered: return "offered";
    case link::ChannelPhase::kOpen: return "open";
    case link::ChannelPhase::kClosed: return "closed";
    case link::ChannelPhase::kRescinded: return "rescinded";
    }
    return "?";
}

}  // namespace

std::filesystem::path RootPartitionProcess::default_binary() {
    std::error_code error;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", error);
    return (error ? std::filesystem::path("vmm") : self).parent_path() / "hvkvm-root";
}

RootPartitionProcess::RootPartitionProcess(RootPartitionServices services, FailureHandler on_failure)
    : services_(services), on_failure_(std::move(on_failure)), stop_event_(::eventfd(0, EFD_CLOEXEC)) {
    if (!stop_event_.valid()) throw_errno("eventfd for the root-partition link thread");
    int messages[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, messages) < 0) throw_errno("socketpair for guest VMBus messages");
    guest_messages_root_end_.reset(messages[1]);
    // The guest's channel messages (connection 1, or 4 from VMBus 5.0 on) go straight to the root.
    UniqueFd vmm_end(messages[0]);
    services_.hypervisor.add_message_connection(vmbus::protocol::kMessageConnectionId4,
                                                std::make_unique<SocketMessageEndpoint>(UniqueFd(::dup(vmm_end.get()))));
    services_.hypervisor.add_message_connection(vmbus::protocol::kMessageConnectionId,
                                                std::make_unique<SocketMessageEndpoint>(std::move(vmm_end)));
}

void RootPartitionProcess::start(const std::filesystem::path& binary) {
    if (::access(binary.c_str(), X_OK) != 0)
        throw HostError(errno, fmt::format("cannot start the root partition: {}: {}", binary.string(), std::strerror(errno)));
    spawn(binary);
    send_hello();
    thread_ = std::thread([this] { serve(); });
}

void RootPartitionProcess::spawn(const std::filesystem::path& binary) {
    int link_pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link_pair) < 0) throw_errno("socketpair for the root-partition link");
    UniqueFd ours(link_pair[0]), theirs(link_pair[1]);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3);  // dup2 clears close-on-exec
    const std::string path = binary.string();
    char* argv[] = {const_cast<char*>(path.c_str()), const_cast<char*>("--link-fd"), const_cast<char*>("3"), nullptr};
    char* envp[] = {nullptr};  // it needs nothing from the environment
    const int error = ::posix_spawn(&pid_, path.c_str(), &actions, nullptr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) throw HostError(error, fmt::format("cannot start the root partition {}", path));
    pidfd_ = open_pidfd(pid_);
    link_.emplace(std::move(ours));
    place_on_root_cpus();
}

// Before it has been sent anything to serve, so that it serves only from its CPUs.
void RootPartitionProcess::place_on_root_cpus() {
    if (services_.root_cpus.empty()) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    for (uint32_t cpu : services_.root_cpus) CPU_SET(cpu, &set);
    if (::sched_setaffinity(pid_, sizeof set, &set) != 0)
        throw HostError(errno, fmt::format("cannot place the root partition on host CPUs {} (vmbus.root_cpus)",
                                           fmt::join(services_.root_cpus, ",")));
}

void RootPartitionProcess::send_hello() {
    link::Hello hello{};
    hello.vcpu_count = services_.vcpu_count;
    const auto& regions = services_.memory.regions();
    hello.region_count = static_cast<uint32_t>(regions.size());
    hello.ram_bytes = services_.memory.size();
    static_assert(kMaxPollWindowUs == link::kMaxPollWindowUs);
    hello.poll_window_us = services_.poll_window_us;
    hello.reference_origin_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(services_.hypervisor.reference_origin().time_since_epoch()).count());
    for (size_t i = 0; i < regions.size() && i < link::kMaxRegions; ++i)
        hello.regions[i] = {regions[i].gpa, regions[i].size, regions[i].memfd_offset, regions[i].node, 0};
    hello.disk_count = static_cast<uint32_t>(services_.disks.size());
    const int fds[] = {services_.memory.memfd(), services_.synic.shared_state_memfd(), guest_messages_root_end_.get()};
    link_->send(MessageType::kHello, hello, fds);
    guest_messages_root_end_.reset();  // the root holds it now
    for (const RootPartitionDisk& disk : services_.disks) {
        link::Disk message{};
        std::snprintf(message.id, sizeof message.id, "%s", disk.id.c_str());
        message.size_bytes = disk.size_bytes;
        message.flags = (disk.read_only ? link::kDiskReadOnly : 0) | (disk.direct ? link::kDiskDirect : 0);
        message.fault = disk.fault;
        const int disk_fd[] = {disk.fd};
        link_->send(MessageType::kDisk, message, disk_fd);
    }
}

RootPartitionProcess::~RootPartitionProcess() {
    stopping_ = true;
    if (pid_ > 0 && !exited_ && link_) stop_process();
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(stop_event_.get(), &one, sizeof one);
    if (thread_.joinable()) thread_.join();
    if (pid_ > 0 && !exited_) reap_status();
    pid_ = -1;
    guest_log_.report_suppressed();
}

// A root partition that is serving gets kStopTimeout to close its channels and exit; one that is
// not ready yet serves nothing and is killed at once, so that stopping a VM whose root partition
// is still starting (a loaded host) costs no wait.
void RootPartitionProcess::stop_process() {
    const bool serving = [&] {
        std::lock_guard lock(mutex_);
        return ready_;
    }();
    if (serving) {
        try {
            link_->send(MessageType::kStop, std::span<const uint8_t>{});
        } catch (const HostError&) {
            // already gone
        }
        pollfd exited{pidfd_.get(), POLLIN, 0};
        const auto timeout_ms = std::chrono::duration_cast<std::chrono::milliseconds>(kStopTimeout).count();
        if (::poll(&exited, 1, static_cast<int>(timeout_ms)) > 0) return;
    }
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

void RootPartitionProcess::inject_fault(link::Fault fault) {
    std::lock_guard lock(mutex_);
    if (!ready_) {
        pending_fault_ = fault;  // sent once it is ready (and sandboxed)
        return;
    }
    const link::InjectFault request{fault, 0};
    link_->send(MessageType::kInjectFault, request);
}

std::optional<std::string> RootPartitionProcess::control(const std::string& request, std::chrono::milliseconds timeout) {
    if (request.size() > link::kControlTextMax) return std::nullopt;
    link::ControlText text{0, static_cast<uint32_t>(request.size()), {}};
    std::memcpy(text.text, request.data(), request.size());
    std::unique_lock lock(mutex_);
    if (!ready_ || !failure_.empty() || exited_) return std::nullopt;
    text.id = next_control_id_++;
    try {
        link_->send(MessageType::kControlRequest, text);
    } catch (const HostError&) {
        return std::nullopt;
    }
    const uint32_t id = text.id;
    if (!control_answered_.wait_for(lock, timeout, [&] { return control_answers_.count(id) || !failure_.empty(); }))
        return std::nullopt;
    auto answer = control_answers_.find(id);
    if (answer == control_answers_.end()) return std::nullopt;
    std::string result = std::move(answer->second);
    control_answers_.erase(answer);
    return result;
}

// The link thread: requests from the root, its exit, pings.
void RootPartitionProcess::serve() {
    UniqueFd ping_timer(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC));
    const auto interval_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kPingInterval).count();
    itimerspec period{{0, interval_ns}, {0, interval_ns}};
    ::timerfd_settime(ping_timer.get(), 0, &period, nullptr);
    uint64_t pings_sent = 0, last_pong = 0;
    const auto started = std::chrono::steady_clock::now();
    auto last_answer = started;
    pollfd fds[4] = {{link_->fd(), POLLIN, 0}, {pidfd_.get(), POLLIN, 0}, {ping_timer.get(), POLLIN, 0},
                     {stop_event_.get(), POLLIN, 0}};
    try {
        for (;;) {
            if (::poll(fds, 4, -1) < 0) {
                if (errno == EINTR) continue;
                throw_errno("poll on the root-partition link");
            }
            if (fds[3].revents) return;
            // Everything queued is read before the ping timer is looked at: a pong behind a burst
            // of heartbeats and log lines, read late by a thread that was not scheduled, is an
            // answer, not a hang.
            for (bool more = fds[0].revents != 0; more;) {
                std::optional<link::ReceivedMessage> message = link_->receive();
                if (!message) {
                    fds[0].fd = -1;  // closed: the pidfd tells how it ended
                    break;
                }
                if (message->type == MessageType::kPong) {
                    last_pong = message->as<link::Ping>().sequence;
                    last_answer = std::chrono::steady_clock::now();
                } else if (!handle(std::move(*message))) {
                    return;
                }
                pollfd queued{link_->fd(), POLLIN, 0};
                more = ::poll(&queued, 1, 0) > 0;
            }
            if (fds[1].revents) {
                const std::string status = reap_status();
                if (!stopping_) fail("exited (" + status + ")");
                return;
            }
            if (fds[2].revents) {
                uint64_t expirations = 0;
                [[maybe_unused]] ssize_t got = ::read(ping_timer.get(), &expirations, sizeof expirations);
                // Ticks missed: this thread itself was not running (an overloaded host), so the
                // silence says nothing about the root partition yet; judge from the next ping on.
                if (expirations > 2) last_answer = std::chrono::steady_clock::now();
                bool is_ready;
                {
                    std::lock_guard lock(mutex_);
                    is_ready = ready_;
                }
                if (!is_ready && std::chrono::steady_clock::now() - started > kReadyTimeout) {
                    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
                    reap_status();
                    if (!stopping_) fail(fmt::format("did not report ready within {} s and was killed", kReadyTimeout.count()));
                    return;
                }
                if (is_ready && last_pong < pings_sent && std::chrono::steady_clock::now() - last_answer > kHangTimeout) {
                    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
                    reap_status();
                    if (!stopping_) fail(fmt::format("stopped answering for {} s and was killed", kHangTimeout.count()));
                    return;
                }
                if (is_ready) {
                    if (last_pong == pings_sent) last_answer = std::chrono::steady_clock::now();
                    const link::Ping ping{++pings_sent};
                    link_->send(MessageType::kPing, ping);
                }
            }
        }
    } catch (const std::exception& error) {
        // A link that breaks usually means the process is dying: say how it ended if it does.
        pollfd exited{pidfd_.get(), POLLIN, 0};
        if (::poll(&exited, 1, 1000) > 0) {
            const std::string status = reap_status();
            if (!stopping_) fail("exited (" + status + ")");
        } else if (!stopping_) {
            fail(fmt::format("broke the link: {}", error.what()));
        }
    }
}

bool RootPartitionProcess::handle(link::ReceivedMessage message) {
    switch (message.type) {
    case MessageType::kReady: {
        std::lock_guard lock(mutex_);
        sandbox_ = message.as<link::Ready>();
        ready_ = true;
        if (pending_fault_) {
            const link::InjectFault request{*pending_fault_, 0};
            link_->send(MessageType::kInjectFault, request);
        }
        send_kvp_presets();
        return true;
    }
    case MessageType::kHeartbeat: note_heartbeat(message.as<link::Heartbeat>()); return true;
    case MessageType::kGuestLog: {
        const auto line = message.as<link::GuestLog>();
        guest_log_.print(line.level, line.lost, std::string_view(line.text, std::min<uint32_t>(line.size, sizeof line.text)));
        return true;
    }
    case MessageType::kPostMessage: serve_post_message(message.as<link::PostMessage>()); return true;
    case MessageType::kOpenEventConnection: serve_event_connection(message.as<link::EventConnection>()); return true;
    case MessageType::kGetSintEventfd: serve_sint_eventfd(message.as<link::SintEventfd>()); return true;
    case MessageType::kChannelState: note_channel(message.as<link::ChannelState>()); return true;
    case MessageType::kControlResponse: {
        const auto answer = message.as<link::ControlText>();
        std::lock_guard lock(mutex_);
        control_answers_[answer.id] = std::string(answer.text, std::min<uint32_t>(answer.size, link::kControlTextMax));
        while (control_answers_.size() > 64) control_answers_.erase(control_answers_.begin());  // nobody waits for these
        control_answered_.notify_all();
        return true;
    }
    default:
        fail(fmt::format("sent an unexpected {} message", link::message_type_name(message.type)));
        return false;
    }
}

void RootPartitionProcess::serve_post_message(const link::PostMessage& message) {
    const uint32_t size = std::min<uint32_t>(message.payload_size, abi::synic::kMessagePayloadMax);
    const auto result = services_.synic.post_message(message.vp, message.sint, message.message_type, {message.payload, size});
    if (result == Synic::PostResult::kDelivered || result == Synic::PostResult::kQueued) return;
    std::lock_guard lock(mutex_);
    if (refused_posts_++ == 0)  // once: the guest decides how often this happens
        spdlog::warn("a root-partition message to VP {} SINT {} was dropped (the guest's SynIC is off or its slot "
                     "stays busy); later drops are counted in the report", message.vp, message.sint);
}

void RootPartitionProcess::serve_event_connection(const link::EventConnection& request) {
    link::EventConnection reply{request.connection_id, 0};
    int fd = -1;
    if (request.connection_id & ~abi::hv::kConnectionIdMask) {
        reply.status = EINVAL;
    } else {
        try {
            bool created = false;
            fd = services_.hypervisor.add_event_connection(request.connection_id, &created);
            if (created) services_.vm.add_pio_doorbell(abi::hv::kSignalEventPort, request.connection_id, fd);
        } catch (const HostError& error) {
            reply.status = static_cast<uint32_t>(error.code().value());
            fd = -1;
        }
    }
    if (fd >= 0) {
        const int fds[] = {fd};
        link_->send(MessageType::kEventConnection, reply, fds);
    } else {
        link_->send(MessageType::kEventConnection, reply);
    }
}

void RootPartitionProcess::serve_sint_eventfd(const link::SintEventfd& request) {
    link::SintEventfd reply{request.vp, request.sint, 0, 0};
    const int fd = services_.synic.sint_eventfd(request.vp, request.sint);
    if (fd < 0) {
        reply.status = EINVAL;
        link_->send(MessageType::kSintEventfd, reply);
        return;
    }
    const int fds[] = {fd};
    link_->send(MessageType::kSintEventfd, reply, fds);
}

void RootPartitionProcess::note_channel(const link::ChannelState& state) {
    Channel channel{state.relid, state.phase, state.target_vp,
                    std::string(state.name, ::strnlen(state.name, sizeof state.name))};
    std::string guest_up;
    {
        std::lock_guard lock(mutex_);
        channels_[state.relid] = std::move(channel);
        guest_up = guest_up_line_locked();
    }
    if (!guest_up.empty()) spdlog::info("{}", guest_up);
}

// The console's sign that the guest is up (issue 9: the default run shows the offered channels
// and a heartbeat), once: when the heartbeat has been answered and the guest has opened every
// channel offered to it — or, for a guest that leaves some unopened, at its third answer.
std::string RootPartitionProcess::guest_up_line_locked() {
    if (guest_up_announced_ || !heartbeat_.seen) return {};
    const bool all_open = std::all_of(channels_.begin(), channels_.end(),
                                      [](const auto& entry) { return entry.second.phase == link::ChannelPhase::kOpen; });
    if (!all_open && heartbeat_.beats < 3) return {};
    guest_up_announced_ = true;
    return fmt::format("the guest is up: heartbeat answered (sequence {}); VMBus channels: {}", heartbeat_.sequence,
                       channels_summary());
}

// Under mutex_ (from handle()): the config's pairs, once, as the root partition becomes ready.
void RootPartitionProcess::send_kvp_presets() {
    for (const auto& [key, value] : services_.kvp_presets) {
        link::KvpPreset preset{};
        preset.key_size = static_cast<uint32_t>(std::min<size_t>(key.size(), sizeof preset.key));
        preset.value_size = static_cast<uint32_t>(std::min<size_t>(value.size(), sizeof preset.value));
        std::memcpy(preset.key, key.data(), preset.key_size);
        std::memcpy(preset.value, value.data(), preset.value_size);
        link_->send(MessageType::kKvpPreset, preset);
    }
}

// The guest-up line (above) once it answers, one warning when it stops answering, one when it
// answers again.
void RootPartitionProcess::note_heartbeat(const link::Heartbeat& event) {
    const double silent_s = static_cast<double>(event.silent_ms) / 1000.0;
    std::string guest_up;
    {
        std::lock_guard lock(mutex_);
        heartbeat_.sequence = event.sequence;
        heartbeat_.beats = event.beats;
        heartbeat_.application_state = event.application_state;
        if (event.kind == link::HeartbeatEventKind::kLost) {
            heartbeat_.lost = true;
        } else {
            heartbeat_.lost = false;
            heartbeat_.seen = true;
            heartbeat_.last_beat = std::chrono::steady_clock::now();
        }
        guest_up = guest_up_line_locked();
    }
    if (!guest_up.empty()) spdlog::info("{}", guest_up);
    if (event.kind == link::HeartbeatEventKind::kLost)
        spdlog::warn("the guest's heartbeat stopped: no answer for {:.1f} s (last sequence {})", silent_s, event.sequence);
    else if (event.kind == link::HeartbeatEventKind::kResumed)
        spdlog::warn("the guest's heartbeat resumed after {:.1f} s without an answer (sequence {})", silent_s, event.sequence);
}

HeartbeatStatus RootPartitionProcess::heartbeat() const {
    std::lock_guard lock(mutex_);
    return heartbeat_;
}

std::string RootPartitionProcess::channels_summary() const {
    std::string summary;
    for (const auto& [relid, channel] : channels_) {
        if (!summary.empty()) summary += ", ";
        summary += fmt::format("{} (relid {}, {}", channel.name, relid, phase_name(channel.phase));
        if (channel.phase == link::ChannelPhase::kOpen) summary += fmt::format(" on VP {}", channel.target_vp);
        summary += ")";
    }
    return summary.empty() ? "no channel yet" : summary;
}

void RootPartitionProcess::fail(std::string what) {
    std::string reason;
    {
        std::lock_guard lock(mutex_);
        if (!failure_.empty()) return;
        reason = fmt::format("root partition (pid {}) {} while serving: {}", pid_, what, channels_summary());
        failure_ = reason;
        control_answered_.notify_all();
    }
    on_failure_(reason);
}

std::string RootPartitionProcess::reap_status() {
    siginfo_t info{};
    if (::waitid(P_PIDFD, static_cast<id_t>(pidfd_.get()), &info, WEXITED) < 0) return "status unknown";
    exited_ = true;
    if (info.si_code == CLD_EXITED) return fmt::format("exit status {}", info.si_status);
    return fmt::format("killed by SIG{}", ::sigabbrev_np(info.si_status) ? ::sigabbrev_np(info.si_status) : "?");
}

std::string RootPartitionProcess::describe() const {
    std::lock_guard lock(mutex_);
    if (!ready_) return fmt::format("pid {}, starting (not ready yet)", pid_);
    const bool sandboxed = sandbox_.seccomp_mode == 2 && sandbox_.capabilities == 0 && sandbox_.no_new_privileges;
    std::string line = fmt::format("pid {}, {} (seccomp mode {}, capabilities {:#x}, no_new_privs {}); channels: {}",
                                   sandbox_.pid, sandboxed ? "sandboxed" : "NOT sandboxed", sandbox_.seccomp_mode,
                                   sandbox_.capabilities, sandbox_.no_new_privileges, channels_summary());
    if (refused_posts_) line += fmt::format("; {} host messages dropped", refused_posts_);
    if (heartbeat_.seen)
        line += fmt::format("; heartbeat: {} answers, last sequence {}{}", heartbeat_.beats, heartbeat_.sequence,
                            heartbeat_.lost ? ", lost" : "");
    return line;
}

std::vector<RootPartitionProcess::Channel> RootPartitionProcess::channels() const {
    std::lock_guard lock(mutex_);
    std::vector<Channel> result;
    for (const auto& [relid, channel] : channels_) result.push_back(channel);
    return result;
}

}  // namespace hvkvm::vmm
