#include "synic/synic.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <fmt/format.h>

#include "interrupts/interrupt_controller.h"
#include "kvm/guest_memory.h"
#include "kvm/kvm_error.h"

namespace hvkvm::vmm {
namespace {

using namespace abi::synic;

constexpr uint64_t kPageGpaMask = ~((uint64_t{1} << kPageGpfnShift) - 1);
constexpr uint64_t kPageReservedMask = ((uint64_t{1} << kPageGpfnShift) - 1) & ~kPageEnable;

bool sint_masked(uint64_t sint) { return sint & (kSintMasked | kSintPolling); }

}  // namespace

Synic::Synic(uint32_t vp_count, GuestMemory& memory, MsiLines& interrupts)
    : memory_(memory), interrupts_(interrupts), shared_memfd_(::memfd_create("hvkvm-synic-state", MFD_CLOEXEC)) {
    for (uint32_t vp = 0; vp < vp_count; ++vp) {
        vps_.push_back(std::make_unique<Vp>());
        vps_.back()->sint.fill(kSintInitialValue);
    }
    if (!shared_memfd_.valid()) throw_errno("memfd_create for the SynIC state page");
    if (::ftruncate(shared_memfd_.get(), abi::kPageSize) < 0) throw_errno("ftruncate the SynIC state page");
    void* page = ::mmap(nullptr, abi::kPageSize, PROT_READ | PROT_WRITE, MAP_SHARED, shared_memfd_.get(), 0);
    if (page == MAP_FAILED) throw_errno("mmap the SynIC state page");
    shared_mapping_ = Mapping(page, abi::kPageSize);
    shared_ = static_cast<SynicSharedState*>(page);
    shared_->vp_count = vp_count;
    __atomic_store_n(&shared_->magic, SynicSharedState::kMagic, __ATOMIC_RELEASE);
}

Synic::~Synic() = default;

bool Synic::handles_msr(uint32_t msr) {
    return (msr >= kMsrScontrol && msr <= kMsrEom) || (msr >= kMsrSint0 && msr < kMsrSint0 + kSintCount);
}

std::optional<uint64_t> Synic::read_msr(uint32_t vp, uint32_t msr) {
    if (vp >= vps_.size()) return std::nullopt;
    Vp& state = *vps_[vp];
    std::lock_guard lock(state.mutex);
    switch (msr) {
    case kMsrScontrol: return state.scontrol;
    case kMsrSversion: return kSynicVersion;
    case kMsrSiefp: return state.siefp;
    case kMsrSimp: return state.simp;
    case kMsrEom: return std::nullopt;  // write-only
    default:
        if (msr >= kMsrSint0 && msr < kMsrSint0 + kSintCount) return state.sint[msr - kMsrSint0];
        return std::nullopt;
    }
}

bool Synic::write_msr(uint32_t vp, uint32_t msr, uint64_t value) {
    if (vp >= vps_.size()) return false;
    Vp& state = *vps_[vp];
    std::lock_guard lock(state.mutex);
    switch (msr) {
    case kMsrScontrol:
        if (value & ~kScontrolEnable) return false;
        state.scontrol = value;
        for (uint32_t sint = 0; sint < kSintCount; ++sint) apply_sint_locked(vp, state, sint);
        publish_siefp_locked(vp, state);
        if (value & kScontrolEnable) deliver_queued_locked(vp, state);
        return true;
    case kMsrSiefp:
    case kMsrSimp: {
        if (value & kPageReservedMask) return false;
        if ((value & kPageEnable) && !memory_.translate(value & kPageGpaMask, abi::kPageSize)) return false;  // not RAM
        (msr == kMsrSiefp ? state.siefp : state.simp) = value;
        publish_siefp_locked(vp, state);
        if (msr == kMsrSimp) deliver_queued_locked(vp, state);
        return true;
    }
    case kMsrEom:
        eoms_.fetch_add(1, std::memory_order_relaxed);
        deliver_queued_locked(vp, state);
        return true;
    case kMsrSversion: return false;  // read-only
    default:
        if (msr >= kMsrSint0 && msr < kMsrSint0 + kSintCount) return write_sint_locked(vp, state, msr - kMsrSint0, value);
        return false;
    }
}

bool Synic::write_sint_locked(uint32_t vp, Vp& state, uint32_t sint, uint64_t value) {
    if (value & kSintReservedMask) return false;
    if (value & kSintAutoEoi) return false;  // not emulated; CPUID recommends against it
    if (!(value & kSintMasked) && (value & kSintVectorMask) < kSintMinimumVector) return false;
    state.sint[sint] = value;
    apply_sint_locked(vp, state, sint);
    return true;
}

MsiLine& Synic::line_locked(uint32_t vp, Vp& state, uint32_t sint) {
    if (!state.lines[sint]) {
        state.lines[sint] = interrupts_.msi_line(MsiMessage::fixed(vp, static_cast<uint8_t>(state.sint[sint] & kSintVectorMask)));
        apply_sint_locked(vp, state, sint);
    }
    return *state.lines[sint];
}

// The route follows the SINT register: its vector, and masked while the SINT is masked, polled,
// or SynIC is off (the eventfd holds triggers until then).
void Synic::apply_sint_locked(uint32_t vp, Vp& state, uint32_t sint) {
    MsiLine* line = state.lines[sint].get();
    if (!line) {
        // A SINT is raised only through its line: create it once the SINT can deliver.
        if (!sint_masked(state.sint[sint]) && (state.scontrol & kScontrolEnable)) line_locked(vp, state, sint);
        return;
    }
    const uint64_t value = state.sint[sint];
    const bool masked = sint_masked(value) || !(state.scontrol & kScontrolEnable);
    if (!masked) line->retarget(MsiMessage::fixed(vp, static_cast<uint8_t>(value & kSintVectorMask)));
    line->set_masked(masked);
}

void Synic::raise_locked(uint32_t vp, Vp& state, uint32_t sint) { line_locked(vp, state, sint).trigger(); }

std::optional<uint64_t> Synic::message_slot_gpa_locked(const Vp& state, uint32_t sint) const {
    if (!(state.scontrol & kScontrolEnable) || !(state.simp & kPageEnable)) return std::nullopt;
    return (state.simp & kPageGpaMask) + uint64_t{sint} * sizeof(Message);
}

// Writes `message` into the slot if the guest has freed it. The type goes last, with release
// semantics: the guest reads the type first and then the rest.
bool Synic::try_deliver_locked(uint32_t vp, Vp& state, uint32_t sint, const Message& message) {
    const auto slot_gpa = message_slot_gpa_locked(state, sint);
    if (!slot_gpa) return false;
    auto bytes = memory_.translate(*slot_gpa, sizeof(Message));
    if (!bytes) return false;
    auto* slot = reinterpret_cast<Message*>(bytes->data());
    if (__atomic_load_n(&slot->header.message_type, __ATOMIC_ACQUIRE) != kMessageTypeNone) return false;
    std::memcpy(slot->payload, message.payload, message.header.payload_size);
    slot->header.payload_size = message.header.payload_size;
    slot->header.sender = message.header.sender;
    slot->header.reserved[0] = slot->header.reserved[1] = 0;
    __atomic_store_n(&slot->header.message_flags, state.queued[sint].size() > 1 ? kMessageFlagPending : 0, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->header.message_type, message.header.message_type, __ATOMIC_RELEASE);
    delivered_.fetch_add(1, std::memory_order_relaxed);
    raise_locked(vp, state, sint);
    return true;
}

void Synic::deliver_queued_locked(uint32_t vp, Vp& state) {
    for (uint32_t sint = 0; sint < kSintCount; ++sint) {
        auto& queue = state.queued[sint];
        if (!queue.empty() && try_deliver_locked(vp, state, sint, queue.front())) queue.pop_front();
    }
}

Synic::PostResult Synic::post_message(uint32_t vp, uint32_t sint, uint32_t message_type,
                                      std::span<const uint8_t> payload) {
    if (!valid_target(vp, sint) || payload.size() > kMessagePayloadMax || message_type == kMessageTypeNone)
        return PostResult::kInvalidTarget;
    Vp& state = *vps_[vp];
    std::lock_guard lock(state.mutex);
    const auto slot_gpa = message_slot_gpa_locked(state, sint);
    if (!slot_gpa) return PostResult::kNotEnabled;
    Message message{};
    message.header.message_type = message_type;
    message.header.payload_size = static_cast<uint8_t>(payload.size());
    std::memcpy(message.payload, payload.data(), payload.size());

    auto& queue = state.queued[sint];
    if (queue.empty() && try_deliver_locked(vp, state, sint, message)) return PostResult::kDelivered;
    if (queue.size() >= kQueueLimit) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return PostResult::kQueueFull;
    }
    queue.push_back(message);
    queued_.fetch_add(1, std::memory_order_relaxed);
    // Ask the guest for an EOM once it frees the slot, then look again: if it freed the slot
    // before seeing the flag, it will not send the EOM, so deliver now.
    auto slot = memory_.translate(*slot_gpa, sizeof(Message));
    auto* header = reinterpret_cast<MessageHeader*>(slot->data());
    __atomic_fetch_or(&header->message_flags, kMessageFlagPending, __ATOMIC_SEQ_CST);
    deliver_queued_locked(vp, state);
    return PostResult::kQueued;
}

bool Synic::signal_event(uint32_t vp, uint32_t sint, uint32_t flag) {
    if (!valid_target(vp, sint) || flag >= kEventFlagsPerSint) return false;
    Vp& state = *vps_[vp];
    std::lock_guard lock(state.mutex);
    if (!(state.scontrol & kScontrolEnable) || !(state.siefp & kPageEnable)) return false;
    auto page = memory_.translate((state.siefp & kPageGpaMask) + uint64_t{sint} * kEventFlagBytesPerSint,
                                  kEventFlagBytesPerSint);
    if (!page) return false;
    auto* words = reinterpret_cast<uint64_t*>(page->data());
    const uint64_t bit = uint64_t{1} << (flag % 64);
    const uint64_t before = __atomic_fetch_or(&words[flag / 64], bit, __ATOMIC_SEQ_CST);
    signalled_.fetch_add(1, std::memory_order_relaxed);
    if (!(before & bit)) raise_locked(vp, state, sint);  // already set: an interrupt is on its way
    return true;
}

int Synic::sint_eventfd(uint32_t vp, uint32_t sint) {
    if (!valid_target(vp, sint)) return -1;
    Vp& state = *vps_[vp];
    std::lock_guard lock(state.mutex);
    return line_locked(vp, state, sint).eventfd();
}

void Synic::publish_siefp_locked(uint32_t vp, const Vp& state) {
    const bool enabled = (state.scontrol & kScontrolEnable) && (state.siefp & kPageEnable);
    __atomic_store_n(&shared_->siefp_gpa[vp], enabled ? state.siefp & kPageGpaMask : 0, __ATOMIC_RELEASE);
}

Synic::Counters Synic::counters() const {
    return {delivered_.load(), queued_.load(), refused_.load(), signalled_.load(), eoms_.load()};
}

}  // namespace hvkvm::vmm
