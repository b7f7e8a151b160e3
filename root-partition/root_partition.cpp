#include "root_partition.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "hvkvm/abi/synic.h"
#include "hypercalls/message_endpoint.h"
#include "kvm/kvm_error.h"
#include "sandbox.h"
#include "services/echo_vsp.h"
#include "services/ic/guest_log.h"
#include "services/ic/heartbeat.h"
#include "services/ic/ic_vsp.h"
#include "services/ic/kvp.h"
#include "services/ic/shutdown.h"
#include "services/ic/timesync.h"
#include "synic/synic_shared_state.h"

namespace hvkvm::root {
namespace {

using link::MessageType;

// Submission queue entries of storvsp's ring (2x that many operations may be in flight).
constexpr uint32_t kIoDepth = 256;

bool is_well_formed(const storage::DiskFault& fault) {
    if (!fault.armed()) return true;
    const auto operation = static_cast<uint32_t>(fault.operation);
    const auto effect = static_cast<uint32_t>(fault.effect);
    return operation <= static_cast<uint32_t>(storage::FaultOperation::kUnmap) && effect >= 1 &&
           effect <= static_cast<uint32_t>(storage::FaultEffect::kShortTransfer) && fault.nth != 0 && fault.count != 0;
}

// A kDisk message checked against its descriptor: a regular file of exactly that size or a block
// device, O_DIRECT exactly when the message says so.
StorvspDisk checked_disk(link::ReceivedMessage& message) {
    const auto disk = message.as<link::Disk>();
    const std::string id(disk.id, ::strnlen(disk.id, sizeof disk.id));
    if (id.empty() || id.size() == sizeof disk.id) throw vmm::HostError(EPROTO, "a disk message without an id");
    vmm::UniqueFd fd = std::move(message.fds[0]);
    struct stat status {};
    if (::fstat(fd.get(), &status) < 0) vmm::throw_errno(fmt::format("fstat disk {}", id));
    const bool usable = S_ISBLK(status.st_mode) || (S_ISREG(status.st_mode) && static_cast<uint64_t>(status.st_size) == disk.size_bytes);
    if (!usable || disk.size_bytes == 0 || disk.size_bytes % storage::scsi::kBlockSize != 0)
        throw vmm::HostError(EPROTO, fmt::format("disk {}: {} bytes is not its image's size", id, disk.size_bytes));
    const bool direct = (::fcntl(fd.get(), F_GETFL) & O_DIRECT) != 0;
    if (direct != ((disk.flags & link::kDiskDirect) != 0))
        throw vmm::HostError(EPROTO, fmt::format("disk {}: O_DIRECT disagrees with its descriptor", id));
    if (!is_well_formed(disk.fault)) throw vmm::HostError(EPROTO, fmt::format("disk {}: malformed fault", id));
    return StorvspDisk{id, std::move(fd), disk.size_bytes, (disk.flags & link::kDiskReadOnly) != 0, direct, disk.fault};
}

template <typename Body>
std::span<const uint8_t> bytes_of(const Body& body) {
    return {reinterpret_cast<const uint8_t*>(&body), sizeof body};
}

vmm::MemoryLayout layout_from(const link::Hello& hello) {
    if (hello.region_count == 0 || hello.region_count > link::kMaxRegions)
        throw vmm::HostError(EPROTO, fmt::format("hello names {} guest RAM regions", hello.region_count));
    std::vector<uint64_t> node_bytes;
    for (uint32_t i = 0; i < hello.region_count; ++i) {
        const link::Region& region = hello.regions[i];
        if (node_bytes.size() <= region.node) node_bytes.resize(region.node + 1, 0);
        node_bytes[region.node] += region.size;
    }
    // The VMM computes the layout the same way; check it agrees region by region.
    vmm::MemoryLayout layout = vmm::MemoryLayout::for_nodes(node_bytes);
    if (layout.ram().size() != hello.region_count) throw vmm::HostError(EPROTO, "hello's RAM regions disagree with the layout");
    for (uint32_t i = 0; i < hello.region_count; ++i) {
        const auto& mine = layout.ram()[i];
        const auto& theirs = hello.regions[i];
        if (mine.gpa != theirs.gpa || mine.size != theirs.size || mine.memfd_offset != theirs.memfd_offset)
            throw vmm::HostError(EPROTO, fmt::format("hello's RAM region {} disagrees with the layout", i));
    }
    return layout;
}

}  // namespace

int RootPartition::run() {
    std::optional<link::ReceivedMessage> hello = link_.receive();
    if (!hello || hello->type != MessageType::kHello) throw vmm::HostError(EPROTO, "the VMM's first message was not hello");
    attach(std::move(*hello));
    std::vector<vmm::UniqueFd> sint_fds = fetch_sint_eventfds();
    if (!disks_.empty()) {
        std::vector<int> files;
        for (const StorvspDisk& disk : disks_) files.push_back(disk.fd.get());
        io_engine_ = std::make_unique<storage::IoEngine>(files, kIoDepth);
    }
    enter_sandbox();  // every descriptor is here or comes over the link: nothing more to open

    const auto& synic = *static_cast<const vmm::SynicSharedState*>(synic_state_.get());
    signals_ = std::make_unique<GuestSignals>(*memory_, synic, std::move(sint_fds));
    services_ = std::make_unique<VspServices>(VspServices{loop_, *memory_, *signals_, *this, 0, nullptr});
    host_ = std::make_unique<VmbusHost>(*services_, *this);
    offer_services();

    const SandboxState sandbox = sandbox_state();
    link::Ready ready{static_cast<uint32_t>(::getpid()), sandbox.seccomp_mode, sandbox.capabilities,
                      sandbox.no_new_privileges ? 1u : 0u, static_cast<uint32_t>(host_->offer_count())};
    link_.send(MessageType::kReady, ready);
    serving_ = true;

    // What arrived while starting is served only now, inside the sandbox.
    while (!deferred_.empty()) {
        link::ReceivedMessage message = std::move(deferred_.front());
        deferred_.pop_front();
        dispatch(std::move(message));
    }
    loop_.watch(link_.fd(), [this] { on_link_readable(); });
    loop_.watch(guest_messages_.get(), [this] { on_guest_messages_readable(); });
    loop_.run();
    host_.reset();  // closes every channel
    return stopped_by_vmm_ ? 0 : 1;
}

void RootPartition::attach(link::ReceivedMessage message) {
    if (message.fds.size() != link::kHelloFdCount) throw vmm::HostError(EPROTO, "hello without its file descriptors");
    const auto hello = message.as<link::Hello>();
    if (hello.vcpu_count == 0 || hello.vcpu_count > abi::kMaxVcpus)
        throw vmm::HostError(EPROTO, fmt::format("hello names {} vCPUs", hello.vcpu_count));
    vcpu_count_ = hello.vcpu_count;
    if (hello.poll_window_us > link::kMaxPollWindowUs)
        throw vmm::HostError(EPROTO, fmt::format("hello asks for a {} µs poll window", hello.poll_window_us));
    poll_window_ = std::chrono::microseconds(hello.poll_window_us);
    clocks_.emplace(hello.reference_origin_ns);
    memory_.emplace(vmm::GuestMemory::attach(std::move(message.fds[0]), layout_from(hello)));
    void* synic = ::mmap(nullptr, abi::kPageSize, PROT_READ, MAP_SHARED, message.fds[1].get(), 0);
    if (synic == MAP_FAILED) vmm::throw_errno("mmap the SynIC state page");
    synic_state_ = vmm::Mapping(synic, abi::kPageSize);
    guest_messages_ = std::move(message.fds[2]);
    if (hello.disk_count > link::kMaxDisks) throw vmm::HostError(EPROTO, fmt::format("hello names {} disks", hello.disk_count));
    receive_disks(hello.disk_count);
}

// The disks follow hello directly.
void RootPartition::receive_disks(uint32_t count) {
    for (uint32_t lun = 0; lun < count; ++lun) {
        std::optional<link::ReceivedMessage> message = link_.receive();
        if (!message || message->type != MessageType::kDisk || message->fds.size() != 1)
            throw vmm::HostError(EPROTO, fmt::format("disk {} of {}: expected a disk message with its descriptor", lun, count));
        disks_.push_back(checked_disk(*message));
    }
}

std::vector<vmm::UniqueFd> RootPartition::fetch_sint_eventfds() {
    std::vector<vmm::UniqueFd> fds;
    for (uint32_t vp = 0; vp < vcpu_count_; ++vp) {
        const link::SintEventfd request{vp, abi::synic::kVmbusSint, 0, 0};
        link::ReceivedMessage reply = call(MessageType::kGetSintEventfd, bytes_of(request), MessageType::kSintEventfd);
        const auto answer = reply.as<link::SintEventfd>();
        if (answer.status != 0 || reply.fds.size() != 1)
            throw vmm::HostError(static_cast<int>(answer.status), fmt::format("no SINT eventfd for VP {}", vp));
        fds.push_back(std::move(reply.fds[0]));
    }
    return fds;
}

static_assert(link::kGuestLogTextMax == vmbus::services::ic::kGuestLogMaxText);

void RootPartition::offer_services() {
    host_->add(std::make_unique<EchoVsp>(*services_, poll_window_));
    if (io_engine_) {
        storvsp_ = std::make_unique<Storvsp>(*services_, std::move(disks_), *io_engine_, vcpu_count_, poll_window_);
        host_->add(storvsp_->primary());
    }
    auto offer_ic = [this](std::unique_ptr<ic::IcService> service) {
        host_->add(std::make_unique<IcVsp>(*services_, std::move(service)));
    };
    offer_ic(std::make_unique<ic::HeartbeatService>([this](const ic::HeartbeatEvent& event) { report_heartbeat(event); }));
    offer_ic(std::make_unique<ic::ShutdownService>());
    offer_ic(std::make_unique<ic::TimeSyncService>(*clocks_));
    offer_ic(std::make_unique<ic::KvpService>());
    offer_ic(std::make_unique<ic::GuestLogService>([this](const ic::GuestLogEntry& entry) { forward_guest_log(entry); }));
}

void RootPartition::report_heartbeat(const ic::HeartbeatEvent& event) {
    using Kind = ic::HeartbeatEvent::Kind;
    link::Heartbeat message{};
    message.kind = event.kind == Kind::kBeat    ? link::HeartbeatEventKind::kBeat
                   : event.kind == Kind::kLost ? link::HeartbeatEventKind::kLost
                                               : link::HeartbeatEventKind::kResumed;
    message.application_state = event.application_state;
    message.sequence = event.sequence;
    message.beats = event.beats;
    message.silent_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(event.silent).count());
    send_report(MessageType::kHeartbeat, bytes_of(message));
}

void RootPartition::forward_guest_log(const ic::GuestLogEntry& entry) {
    link::GuestLog message{};
    message.level = static_cast<uint32_t>(entry.level);
    message.size = static_cast<uint32_t>(std::min<size_t>(entry.text.size(), sizeof message.text));
    message.lost = entry.lost;
    std::memcpy(message.text, entry.text.data(), message.size);
    send_report(MessageType::kGuestLog, bytes_of(message));
}

// A host pair from the config, for the KVP service (which checks it against the wire's limits).
void RootPartition::preset_kvp(const link::KvpPreset& preset) {
    const std::string key(preset.key, std::min<uint32_t>(preset.key_size, link::kKvpKeyMax));
    const std::string value(preset.value, std::min<uint32_t>(preset.value_size, link::kKvpValueMax));
    host_->control({{"command", "kvp-preset"}, {"key", key}, {"value", value}}, [key](const nlohmann::json& answer) {
        if (!answer.value("ok", false))
            spdlog::warn("kvp: the config's pair \"{}\" was refused: {}", key, answer.value("error", "?"));
    });
}

void RootPartition::post_message(uint32_t vp, uint32_t sint, uint32_t message_type, std::span<const uint8_t> payload) {
    link::PostMessage message{};
    message.vp = vp;
    message.sint = sint;
    message.message_type = message_type;
    message.payload_size = static_cast<uint32_t>(std::min<size_t>(payload.size(), sizeof message.payload));
    std::memcpy(message.payload, payload.data(), message.payload_size);
    link_.send(MessageType::kPostMessage, message);
}

vmm::UniqueFd RootPartition::open_event_connection(uint32_t connection_id) {
    const link::EventConnection request{connection_id, 0};
    link::ReceivedMessage reply = call(MessageType::kOpenEventConnection, bytes_of(request), MessageType::kEventConnection);
    const auto answer = reply.as<link::EventConnection>();
    if (answer.status != 0 || reply.fds.size() != 1)
        throw vmm::HostError(static_cast<int>(answer.status), fmt::format("event connection {:#x} refused", connection_id));
    return std::move(reply.fds[0]);
}

void RootPartition::report_channel(uint32_t relid, link::ChannelPhase phase, uint32_t target_vp, const char* name) {
    link::ChannelState state{relid, phase, target_vp, 0, {}};
    std::snprintf(state.name, sizeof state.name, "%s", name);
    send_report(MessageType::kChannelState, bytes_of(state));
}

link::ReceivedMessage RootPartition::call(MessageType request, std::span<const uint8_t> body, MessageType reply) {
    link_.send(request, body);
    for (;;) {
        std::optional<link::ReceivedMessage> message = link_.receive();
        if (!message) throw vmm::HostError(EPIPE, "the VMM closed the link");
        if (message->type == reply) return std::move(*message);
        if (!serving_) deferred_.push_back(std::move(*message));  // not before the sandbox is up
        else dispatch(std::move(*message));
    }
}

void RootPartition::on_link_readable() {
    std::optional<link::ReceivedMessage> message = link_.receive();
    if (!message) {
        link_closed_ = true;
        loop_.stop();
        return;
    }
    dispatch(std::move(*message));
}

void RootPartition::dispatch(link::ReceivedMessage message) {
    switch (message.type) {
    case MessageType::kPing: link_.send(MessageType::kPong, message.as<link::Ping>()); return;
    case MessageType::kStop:
        stopped_by_vmm_ = true;
        loop_.stop();
        return;
    case MessageType::kInjectFault: inject_fault(message.as<link::InjectFault>().fault); return;
    case MessageType::kControlRequest: answer_control(message.as<link::ControlText>()); return;
    case MessageType::kKvpPreset: preset_kvp(message.as<link::KvpPreset>()); return;
    default: spdlog::warn("unexpected {} message from the VMM", link::message_type_name(message.type)); return;
    }
}

void RootPartition::answer_control(const link::ControlText& request) {
    const auto text = std::string_view(request.text, std::min<uint32_t>(request.size, link::kControlTextMax));
    const nlohmann::json parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    ControlReply reply = [this, id = request.id](nlohmann::json answer) { send_control_answer(id, answer); };
    if (parsed.is_discarded() || !parsed.is_object()) reply({{"ok", false}, {"error", "not a JSON object"}});
    else host_->control(parsed, std::move(reply));
}

void RootPartition::send_control_answer(uint32_t id, const nlohmann::json& answer) {
    link::ControlText reply{id, 0, {}};
    std::string dumped = answer.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (dumped.size() > link::kControlTextMax) dumped = R"({"ok":false,"error":"answer too long"})";
    reply.size = static_cast<uint32_t>(dumped.size());
    std::memcpy(reply.text, dumped.data(), dumped.size());
    send_report(MessageType::kControlResponse, bytes_of(reply));
}

// What the services tell the VMM, possibly while the channels close as the root partition stops
// (a control request still waiting is answered then): a link the VMM has already closed makes it
// nobody's news, not an error. The event loop learns of the closed link on its own.
void RootPartition::send_report(MessageType type, std::span<const uint8_t> body) {
    try {
        link_.send(type, body);
    } catch (const vmm::HostError& error) {
        spdlog::debug("{} not sent: {}", link::message_type_name(type), error.what());
    }
}

void RootPartition::on_guest_messages_readable() {
    vmm::PostedMessage message{};
    const ssize_t received = ::recv(guest_messages_.get(), &message, sizeof message, MSG_DONTWAIT);
    if (received < static_cast<ssize_t>(vmm::kPostedMessageHeaderSize)) return;
    const uint32_t size = std::min<uint32_t>(message.payload_size, static_cast<uint32_t>(received) - vmm::kPostedMessageHeaderSize);
    if (message.message_type != abi::synic::kMessageTypeVmbus) return;
    host_->on_guest_message(message.payload, size);
}

void RootPartition::inject_fault(link::Fault fault) {
    switch (fault) {
    case link::Fault::kForbiddenSyscall: {
        const int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            spdlog::error("the sandbox let the root partition open /dev/kvm");
            ::close(fd);
        } else {
            spdlog::info("the sandbox refused open(\"/dev/kvm\"): {}", std::strerror(errno));
        }
        return;
    }
    case link::Fault::kCrash:
        spdlog::info("crashing on request (debug.root_partition_fault=crash)");
        std::raise(SIGSEGV);
        return;
    case link::Fault::kHang:
        spdlog::info("hanging on request (debug.root_partition_fault=hang)");
        for (;;) ::sleep(60);
    }
}

}  // namespace hvkvm::root
