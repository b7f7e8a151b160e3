// The synthetic interrupt controller (hvkvm/abi/synic.h), emulated in the VMM: per-VP SynIC MSRs,
// host->guest messages written into the guest's message page (SIMP) slot by slot with the TLFS's
// slot protocol, event flags set in the guest's event-flag page (SIEFP), and each SINT raised as
// an MSI (an irqfd) to the vector the guest programmed.
//
// Message slots: a message is written only into a free slot (type None); otherwise it is queued
// and the slot's "message pending" flag is set, so that the guest writes EOM once it has freed
// the slot, and the next queued message is delivered then. Queues are bounded per SINT: a guest
// that never frees its slot makes posting fail (kQueueFull), never the VMM grow.
//
// Event flags are also set by the root-partition process directly (the hot path of channel
// interrupts): it reads each VP's SIEFP address from a shared page this class keeps up to date
// (SynicSharedState), sets the flag in guest memory and writes the SINT's eventfd (sint_eventfd).
//
// Auto-EOI is not emulated (the in-kernel LAPIC is KVM's, and the SINT arrives as an MSI): the
// CPUID recommends against it, and a SINT write asking for it faults.
//
// Thread safety: each VP's state is guarded by that VP's mutex; MSR exits come from the VP's own
// thread, posts and signals from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "hvkvm/abi/boot.h"
#include "hvkvm/abi/synic.h"
#include "kvm/unique_fd.h"
#include "synic/synic_shared_state.h"

namespace hvkvm::vmm {

class GuestMemory;
class MsiLine;
class MsiLines;

class Synic {
public:
    static constexpr size_t kQueueLimit = 64;  // queued messages per (VP, SINT)

    Synic(uint32_t vp_count, GuestMemory& memory, MsiLines& interrupts);
    ~Synic();
    Synic(const Synic&) = delete;
    Synic& operator=(const Synic&) = delete;

    static bool handles_msr(uint32_t msr);
    // nullopt / false: the access faults (#GP).
    std::optional<uint64_t> read_msr(uint32_t vp, uint32_t msr);
    bool write_msr(uint32_t vp, uint32_t msr, uint64_t value);

    enum class PostResult {
        kDelivered,     // written into the slot, SINT raised
        kQueued,        // the slot was busy: delivered after the guest's EOM
        kQueueFull,     // the guest has not freed its slot for kQueueLimit messages
        kNotEnabled,    // SynIC or the message page is disabled on that VP
        kInvalidTarget, // no such VP or SINT, or a payload over 240 bytes
    };
    PostResult post_message(uint32_t vp, uint32_t sint, uint32_t message_type, std::span<const uint8_t> payload);

    // Sets `flag` in (vp, sint)'s event-flag array and raises the SINT. False if the VP's SIEFP
    // or SynIC is disabled, or the target does not exist.
    bool signal_event(uint32_t vp, uint32_t sint, uint32_t flag);

    // The eventfd that raises (vp, sint): its irqfd, created on first use (or -1 for no such
    // target). Stable for the VM's life; the VMM retargets and masks the route behind it.
    int sint_eventfd(uint32_t vp, uint32_t sint);

    int shared_state_memfd() const { return shared_memfd_.get(); }

    struct Counters {
        uint64_t messages_delivered;
        uint64_t messages_queued;
        uint64_t messages_refused;
        uint64_t events_signalled;
        uint64_t end_of_messages;
    };
    Counters counters() const;

private:
    struct Vp {
        std::mutex mutex;  // guards everything below
        uint64_t scontrol = 0;
        uint64_t siefp = 0;
        uint64_t simp = 0;
        std::array<uint64_t, abi::synic::kSintCount> sint{};
        std::array<std::deque<abi::synic::Message>, abi::synic::kSintCount> queued;
        std::array<std::unique_ptr<MsiLine>, abi::synic::kSintCount> lines;
    };

    bool valid_target(uint32_t vp, uint32_t sint) const { return vp < vps_.size() && sint < abi::synic::kSintCount; }
    bool write_sint_locked(uint32_t vp, Vp& state, uint32_t sint, uint64_t value);
    MsiLine& line_locked(uint32_t vp, Vp& state, uint32_t sint);
    void apply_sint_locked(uint32_t vp, Vp& state, uint32_t sint);
    void raise_locked(uint32_t vp, Vp& state, uint32_t sint);
    std::optional<uint64_t> message_slot_gpa_locked(const Vp& state, uint32_t sint) const;
    bool try_deliver_locked(uint32_t vp, Vp& state, uint32_t sint, const abi::synic::Message& message);
    void deliver_queued_locked(uint32_t vp, Vp& state);
    void publish_siefp_locked(uint32_t vp, const Vp& state);

    GuestMemory& memory_;
    MsiLines& interrupts_;
    std::vector<std::unique_ptr<Vp>> vps_;
    UniqueFd shared_memfd_;
    Mapping shared_mapping_;
    SynicSharedState* shared_ = nullptr;

    std::atomic<uint64_t> delivered_{0}, queued_{0}, refused_{0}, signalled_{0}, eoms_{0};
};

}  // namespace hvkvm::vmm
