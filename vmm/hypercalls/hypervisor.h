// The VMM's hypervisor interface for one partition: synthetic MSRs and hypercalls
// (hvkvm/abi/hypercall.h). It works on register values and guest memory only, so it is
// unit-tested without KVM; the vCPU threads feed it MSR and PIO exits.
//
// Thread safety: called from every vCPU thread at once. Partition MSR state is guarded by a
// mutex; counters are atomic; connection tables are fixed once the VM runs.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hvkvm/abi/hypercall.h"
#include "hypercalls/message_endpoint.h"
#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class GuestMemory;
class Synic;

struct HypervisorConfig {
    uint32_t vcpu_count = 1;
    uint64_t tsc_khz = 0;
};

// What the guest passed to a hypercall (RCX, RDX, R8).
struct HypercallRegisters {
    uint64_t control;
    uint64_t input;
    uint64_t output;
};

class Hypervisor {
public:
    using MessageHandler = LocalMessageEndpoint::Handler;

    // `synic` (optional) serves the SynIC MSRs; without it they fault.
    Hypervisor(const HypervisorConfig& config, GuestMemory& memory, Synic* synic = nullptr);

    // Host components register where guest messages and events for a connection go. Before the
    // VM runs only.
    void add_message_connection(uint32_t connection_id, std::unique_ptr<MessageEndpoint> endpoint);
    void add_message_connection(uint32_t connection_id, MessageHandler handler) {
        add_message_connection(connection_id, std::make_unique<LocalMessageEndpoint>(std::move(handler)));
    }
    // Returns the eventfd a SignalEvent on the connection increments (the VMM registers it as an
    // ioeventfd on kSignalEventPort matched on the connection id, too). May be called while the VM
    // runs (the root partition opens channels); a second call for the same id returns the same fd
    // and sets `created` false.
    int add_event_connection(uint32_t connection_id, bool* created = nullptr);

    // Synthetic MSRs. nullopt means the access faults (#GP).
    std::optional<uint64_t> read_msr(uint32_t vp, uint32_t msr);
    bool write_msr(uint32_t vp, uint32_t msr, uint64_t value);

    // A hypercall through the page's generic path; returns the result value for RAX. May block
    // (WaitForKick) until kicked, timed out, or `stop_fd` becomes readable.
    uint64_t hypercall(uint32_t vp, const HypercallRegisters& registers, int stop_fd);

    // The doorbell ports' fallbacks (no ioeventfd matched the value written).
    uint64_t signal_event_doorbell(uint32_t connection_id);
    uint64_t kick_vp_doorbell(uint32_t vp_index);

    // The guest-physical address of the enabled hypercall page's `out` to `port`, if the page is
    // enabled and still holds that instruction there (the guest can overwrite it).
    std::optional<uint64_t> page_out_gpa(uint16_t port) const;

    void set_tsc_khz(uint64_t tsc_khz) { config_.tsc_khz = tsc_khz; }  // before the VM runs
    bool hypercall_page_enabled() const;
    int kick_eventfd(uint32_t vp) const { return kick_fds_.at(vp).get(); }
    uint64_t reference_time_100ns() const;
    // When reference time was 0, on the steady clock (CLOCK_MONOTONIC): the root partition's
    // time-sync service pairs its readings with the same clock.
    std::chrono::steady_clock::time_point reference_origin() const { return reference_origin_; }

    struct CallCount {
        std::string name;
        uint64_t count;
    };
    // Hypercalls handled by the VMM, by code, plus doorbells completed in the host kernel (counted
    // by draining their eventfds), for the end-of-run report: call once, after the vCPUs stop.
    std::vector<CallCount> final_call_counts();

private:
    using Status = abi::hv::Status;

    uint64_t dispatch(uint32_t vp, const HypercallRegisters& registers, int stop_fd);
    Status post_message(const HypercallRegisters& registers);
    Status signal_event(uint32_t connection_id, uint32_t flag_number);
    Status get_reference_time(const HypercallRegisters& registers);
    Status kick_vp(uint32_t vp_index);
    Status wait_for_kick(uint32_t vp, uint64_t timeout_100ns, int stop_fd);
    Status notify_long_spin_wait();
    bool enable_hypercall_page_locked(uint64_t value);

    // Guest memory for a hypercall's input or output: 8-byte aligned, inside one page, RAM.
    std::optional<std::span<uint8_t>> call_buffer(uint64_t gpa, uint64_t length) const;

    void count(abi::hv::CallCode code);

    HypervisorConfig config_;
    GuestMemory& memory_;
    Synic* synic_;
    const std::chrono::steady_clock::time_point reference_origin_;

    mutable std::mutex partition_mutex_;
    uint64_t guest_os_id_ = 0;
    uint64_t hypercall_msr_ = 0;

    std::map<uint32_t, std::unique_ptr<MessageEndpoint>> message_connections_;
    mutable std::mutex event_connections_mutex_;  // guards event_connections_
    std::map<uint32_t, UniqueFd> event_connections_;
    std::vector<UniqueFd> kick_fds_;
    std::atomic<uint64_t> kicks_consumed_{0};

    static constexpr size_t kCodeSlots = 0x1000;  // counters for codes below this; others "other"
    std::array<std::atomic<uint64_t>, kCodeSlots> call_counters_{};
    std::atomic<uint64_t> other_codes_{0};
};

const char* call_code_name(uint16_t code);

}  // namespace hvkvm::vmm
