#include "hypercalls/hypervisor.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>

#include "hvkvm/abi/boot.h"
#include "hypercalls/hypercall_page.h"
#include "kvm/guest_memory.h"
#include "synic/synic.h"
#include "kvm/kvm_error.h"

namespace hvkvm::vmm {
namespace {

using namespace abi::hv;

constexpr uint64_t kApicFrequencyHz = 1'000'000'000;  // KVM's emulated LAPIC bus: 1 ns per tick

uint64_t result(Status status) { return static_cast<uint64_t>(status); }

UniqueFd make_eventfd(const char* what) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd.valid()) throw_errno(what);
    return fd;
}

// Reads (and so resets) an eventfd's counter; 0 if nothing was signalled.
uint64_t drain(int fd) {
    uint64_t value = 0;
    return ::read(fd, &value, sizeof value) == static_cast<ssize_t>(sizeof value) ? value : 0;
}

}  // namespace

const char* call_code_name(uint16_t code) {
    switch (static_cast<CallCode>(code)) {
    case CallCode::kNotifyLongSpinWait: return "NotifyLongSpinWait";
    case CallCode::kPostMessage: return "PostMessage";
    case CallCode::kSignalEvent: return "SignalEvent";
    case CallCode::kGetReferenceTime: return "GetReferenceTime (hvkvm)";
    case CallCode::kKickVp: return "KickVp (hvkvm)";
    case CallCode::kWaitForKick: return "WaitForKick (hvkvm)";
    }
    return nullptr;
}

Hypervisor::Hypervisor(const HypervisorConfig& config, GuestMemory& memory, Synic* synic)
    : config_(config), memory_(memory), synic_(synic), reference_origin_(std::chrono::steady_clock::now()) {
    for (uint32_t vp = 0; vp < config.vcpu_count; ++vp) kick_fds_.push_back(make_eventfd("eventfd for VP kicks"));
}

void Hypervisor::add_message_connection(uint32_t connection_id, std::unique_ptr<MessageEndpoint> endpoint) {
    message_connections_[connection_id & kConnectionIdMask] = std::move(endpoint);
}

int Hypervisor::add_event_connection(uint32_t connection_id, bool* created) {
    std::lock_guard lock(event_connections_mutex_);
    UniqueFd& fd = event_connections_[connection_id & kConnectionIdMask];
    if (created) *created = !fd.valid();
    if (!fd.valid()) fd = make_eventfd("eventfd for an event connection");
    return fd.get();
}

uint64_t Hypervisor::reference_time_100ns() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - reference_origin_)
                                     .count()) /
           100;
}

bool Hypervisor::hypercall_page_enabled() const {
    std::lock_guard lock(partition_mutex_);
    return hypercall_msr_ & kHypercallEnable;
}

std::optional<uint64_t> Hypervisor::read_msr(uint32_t vp, uint32_t msr) {
    if (Synic::handles_msr(msr)) return synic_ ? synic_->read_msr(vp, msr) : std::nullopt;
    switch (msr) {
    case kMsrGuestOsId: {
        std::lock_guard lock(partition_mutex_);
        return guest_os_id_;
    }
    case kMsrHypercall: {
        std::lock_guard lock(partition_mutex_);
        return hypercall_msr_;
    }
    case kMsrVpIndex: return vp;
    case kMsrTimeRefCount: return reference_time_100ns();
    case kMsrTscFrequency: return config_.tsc_khz * 1000;
    case kMsrApicFrequency: return kApicFrequencyHz;
    default: return std::nullopt;
    }
}

bool Hypervisor::write_msr(uint32_t vp, uint32_t msr, uint64_t value) {
    if (Synic::handles_msr(msr)) return synic_ && synic_->write_msr(vp, msr, value);
    std::lock_guard lock(partition_mutex_);
    switch (msr) {
    case kMsrGuestOsId:
        guest_os_id_ = value;
        if (value == 0) hypercall_msr_ &= ~kHypercallEnable;  // a zero OS id disables hypercalls
        return true;
    case kMsrHypercall:
        if (hypercall_msr_ & kHypercallLocked) return false;
        return enable_hypercall_page_locked(value);
    default: return false;  // read-only or unknown: #GP
    }
}

bool Hypervisor::enable_hypercall_page_locked(uint64_t value) {
    const bool enable = (value & kHypercallEnable) && guest_os_id_ != 0;  // TLFS: needs an OS id first
    if (enable) {
        const uint64_t gpa = (value >> kHypercallGpfnShift) << kHypercallGpfnShift;
        auto page = memory_.translate(gpa, abi::kPageSize);
        if (!page) return false;  // not RAM: #GP
        write_hypercall_page(*page);  // callers on other vCPUs keep seeing valid code throughout
    }
    hypercall_msr_ = enable ? value : (value & ~kHypercallEnable);
    return true;
}

std::optional<uint64_t> Hypervisor::page_out_gpa(uint16_t port) const {
    const auto offset = hypercall_page_out_offset(port);
    if (!offset) return std::nullopt;
    uint64_t page;
    {
        std::lock_guard lock(partition_mutex_);
        if (!(hypercall_msr_ & kHypercallEnable)) return std::nullopt;
        page = (hypercall_msr_ >> kHypercallGpfnShift) << kHypercallGpfnShift;
    }
    const auto expected = hypercall_page_code().subspan(*offset, kHypercallPageOutLength);
    const auto actual = memory_.translate(page + *offset, kHypercallPageOutLength);
    if (!actual || std::memcmp(actual->data(), expected.data(), expected.size()) != 0) return std::nullopt;
    return page + *offset;
}

std::optional<std::span<uint8_t>> Hypervisor::call_buffer(uint64_t gpa, uint64_t length) const {
    if (gpa % 8 != 0 || (gpa % abi::kPageSize) + length > abi::kPageSize) return std::nullopt;
    auto bytes = memory_.translate(gpa, length);
    if (!bytes) return std::nullopt;
    return std::span<uint8_t>(reinterpret_cast<uint8_t*>(bytes->data()), bytes->size());
}

void Hypervisor::count(CallCode code) {
    const auto index = static_cast<size_t>(code);
    if (index < kCodeSlots) call_counters_[index].fetch_add(1, std::memory_order_relaxed);
    else other_codes_.fetch_add(1, std::memory_order_relaxed);
}

uint64_t Hypervisor::hypercall(uint32_t vp, const HypercallRegisters& registers, int stop_fd) {
    if (!hypercall_page_enabled()) return result(Status::kAccessDenied);  // not through an enabled page
    return dispatch(vp, registers, stop_fd);
}

uint64_t Hypervisor::dispatch(uint32_t vp, const HypercallRegisters& registers, int stop_fd) {
    const uint64_t control = registers.control;
    const auto code = static_cast<CallCode>(control & kControlCodeMask);
    count(code);
    // Every call here is a simple call: no reps, no variable header, no reserved bits.
    if (control & (kControlReservedMask | kControlRepCountMask | kControlRepStartMask | kControlVarHeaderMask))
        return result(Status::kInvalidHypercallInput);
    const bool fast = control & kControlFast;

    switch (code) {
    case CallCode::kNotifyLongSpinWait: return result(notify_long_spin_wait());
    case CallCode::kPostMessage:
        return result(fast ? Status::kInvalidHypercallInput : post_message(registers));
    case CallCode::kSignalEvent: {
        uint64_t input = registers.input;
        if (!fast) {
            auto buffer = call_buffer(registers.input, sizeof(uint64_t));
            if (!buffer) return result(Status::kInvalidAlignment);
            std::memcpy(&input, buffer->data(), sizeof input);
        }
        // connection id: bits 31:0 (23:0 used), flag number: 47:32, reserved: 63:48.
        if (input >> 48) return result(Status::kInvalidHypercallInput);
        return result(signal_event(static_cast<uint32_t>(input), static_cast<uint32_t>(input >> 32) & 0xffff));
    }
    case CallCode::kGetReferenceTime:
        return result(fast ? Status::kInvalidHypercallInput : get_reference_time(registers));
    case CallCode::kKickVp:
        if (!fast) return result(Status::kInvalidHypercallInput);
        if (registers.input >> 32) return result(Status::kInvalidVpIndex);
        return result(kick_vp(static_cast<uint32_t>(registers.input)));
    case CallCode::kWaitForKick:
        if (!fast) return result(Status::kInvalidHypercallInput);
        return result(wait_for_kick(vp, registers.input, stop_fd));
    }
    return result(Status::kInvalidHypercallCode);
}

Hypervisor::Status Hypervisor::post_message(const HypercallRegisters& registers) {
    auto buffer = call_buffer(registers.input, sizeof(PostMessageInput));
    if (!buffer) return Status::kInvalidAlignment;
    PostMessageInput message;
    std::memcpy(&message, buffer->data(), sizeof message);  // copy once; the guest may change it meanwhile
    if (message.connection_id & ~kConnectionIdMask || message.reserved != 0) return Status::kInvalidParameter;
    if (message.message_type == 0 || (message.message_type & 0x80000000u)) return Status::kInvalidParameter;
    if (message.payload_size > kMessagePayloadMax) return Status::kInvalidParameter;
    auto endpoint = message_connections_.find(message.connection_id);
    if (endpoint == message_connections_.end()) return Status::kInvalidConnectionId;
    return endpoint->second->deliver(message.connection_id, message.message_type, {message.payload, message.payload_size});
}

Hypervisor::Status Hypervisor::signal_event(uint32_t connection_id, uint32_t flag_number) {
    if (connection_id & ~kConnectionIdMask) return Status::kInvalidParameter;
    std::lock_guard lock(event_connections_mutex_);
    auto connection = event_connections_.find(connection_id);
    if (connection == event_connections_.end()) return Status::kInvalidConnectionId;
    if (flag_number != 0) return Status::kInvalidParameter;  // one flag per connection
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(connection->second.get(), &one, sizeof one);
    return Status::kSuccess;
}

Hypervisor::Status Hypervisor::get_reference_time(const HypercallRegisters& registers) {
    auto buffer = call_buffer(registers.output, sizeof(uint64_t));
    if (!buffer) return Status::kInvalidAlignment;
    const uint64_t now = reference_time_100ns();
    std::memcpy(buffer->data(), &now, sizeof now);
    return Status::kSuccess;
}

Hypervisor::Status Hypervisor::kick_vp(uint32_t vp_index) {
    if (vp_index >= kick_fds_.size()) return Status::kInvalidVpIndex;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(kick_fds_[vp_index].get(), &one, sizeof one);
    return Status::kSuccess;
}

Hypervisor::Status Hypervisor::wait_for_kick(uint32_t vp, uint64_t timeout_100ns, int stop_fd) {
    const int kick_fd = kick_fds_.at(vp).get();
    pollfd fds[2] = {{kick_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    timespec timeout{static_cast<time_t>(timeout_100ns / 10'000'000),
                     static_cast<long>((timeout_100ns % 10'000'000) * 100)};
    const int ready = ::ppoll(fds, stop_fd >= 0 ? 2 : 1, timeout_100ns ? &timeout : nullptr, nullptr);
    if (ready > 0 && (fds[0].revents & POLLIN)) {
        kicks_consumed_.fetch_add(drain(kick_fd), std::memory_order_relaxed);
        return Status::kSuccess;
    }
    // Timed out, the VM is stopping, or a signal interrupted the wait: the guest sees a timeout
    // (and when stopping, never runs again).
    return Status::kTimeout;
}

Hypervisor::Status Hypervisor::notify_long_spin_wait() {
    // The spinning vCPU gives its host CPU away: with more vCPUs than host cores, the one holding
    // the lock may be waiting for exactly this CPU.
    ::sched_yield();
    return Status::kSuccess;
}

uint64_t Hypervisor::signal_event_doorbell(uint32_t connection_id) {
    count(CallCode::kSignalEvent);
    if (!hypercall_page_enabled()) return result(Status::kAccessDenied);
    return result(signal_event(connection_id, 0));
}

uint64_t Hypervisor::kick_vp_doorbell(uint32_t vp_index) {
    count(CallCode::kKickVp);
    if (!hypercall_page_enabled()) return result(Status::kAccessDenied);
    return result(kick_vp(vp_index));
}

std::vector<Hypervisor::CallCount> Hypervisor::final_call_counts() {
    std::vector<CallCount> counts;
    // Known codes one line each; unknown ones (the guest picks them, all 65,536 if it likes) in
    // one line, so that the report stays a few lines long whatever the guest did.
    uint64_t unknown = other_codes_.load();
    for (size_t code = 0; code < kCodeSlots; ++code) {
        const uint64_t value = call_counters_[code].load(std::memory_order_relaxed);
        if (!value) continue;
        const char* name = call_code_name(static_cast<uint16_t>(code));
        if (name) counts.push_back({fmt::format("{} ({:#06x})", name, code), value});
        else unknown += value;
    }
    if (unknown) counts.push_back({"unknown codes", unknown});
    uint64_t doorbell_events = 0;
    {
        std::lock_guard lock(event_connections_mutex_);
        for (auto& [id, fd] : event_connections_) doorbell_events += drain(fd.get());
    }
    uint64_t doorbell_kicks = kicks_consumed_.load();
    for (auto& fd : kick_fds_) doorbell_kicks += drain(fd.get());
    // Events and kicks delivered, however they arrived; the calls above are the ones that exited.
    if (doorbell_events) counts.push_back({"events signalled (all paths)", doorbell_events});
    if (doorbell_kicks) counts.push_back({"VP kicks delivered (all paths)", doorbell_kicks});
    return counts;
}

}  // namespace hvkvm::vmm
