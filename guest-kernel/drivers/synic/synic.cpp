#include "drivers/synic/synic.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "hv/hypervisor.h"
#include "kernel/console.h"
#include "kernel/interrupts.h"
#include "kernel/sched/mutex.h"
#include "kernel/sync/cross_call.h"
#include "lib/string.h"
#include "mm/page_allocator.h"

namespace hvkvm::guest::synic {
namespace {

using namespace abi::synic;

constexpr uint32_t kFlagWordsPerSint = kEventFlagsPerSint / 64;
// Messages one interrupt takes from one slot. Each delivery raises the SINT again, so a slot the
// host keeps refilling (EOM makes it deliver the next queued message at once) is never stranded
// by stopping here; the bound only keeps one interrupt from running unboundedly long.
constexpr uint32_t kSlotDrainLimit = 64;

struct CpuPages {
    Message* messages = nullptr;      // SIMP: one slot per SINT
    uint64_t* event_flags = nullptr;  // SIEFP: kFlagWordsPerSint words per SINT
};

// Owned by the SINT's user between attach() and detach(). The handler is written before
// `attached` is published (release) and read after it is seen (acquire).
struct Sint {
    bool attached = false;
    SintHandler handler;
};

// Each CPU writes only its own counters; other CPUs read them (relaxed).
struct CpuCounters {
    CpuStats cpu;
    SintStats sints[kSintCount];
};

// The SynIC of this VM. `pages` and `vector` are set by init() before any SINT is attached and
// read-only afterwards; `sints` changes under `attach_lock`.
struct Synic {
    bool ready = false;
    uint8_t vector = 0;
    CpuPages pages[abi::kMaxVcpus];
    Mutex attach_lock;
    Sint sints[kSintCount];
    CpuCounters counters[abi::kMaxVcpus];
} state;

void bump(uint64_t& counter) { __atomic_store_n(&counter, counter + 1, __ATOMIC_RELAXED); }
uint64_t read(const uint64_t& counter) { return __atomic_load_n(&counter, __ATOMIC_RELAXED); }

// Frees the slot and, only if the host asked for it (it queued another message), writes EOM.
// The exchange is a full barrier between freeing and reading the flag: it pairs with the host's
// "set pending, then re-check the slot" (vmm/synic), so one of the two sides always sees the other.
void release_slot(Message& slot, SintStats& counters) {
    __atomic_exchange_n(&slot.header.message_type, kMessageTypeNone, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&slot.header.message_flags, __ATOMIC_RELAXED) & kMessageFlagPending) {
        x86::wrmsr(kMsrEom, 0);
        bump(counters.end_of_messages);
    }
}

bool drain_slot(uint32_t cpu, uint32_t sint, const SintHandler& handler) {
    Message& slot = state.pages[cpu].messages[sint];
    CpuCounters& counters = state.counters[cpu];
    uint32_t taken = 0;
    for (;;) {
        const uint32_t type = __atomic_load_n(&slot.header.message_type, __ATOMIC_ACQUIRE);
        if (type == kMessageTypeNone) break;
        if (taken == kSlotDrainLimit) {
            bump(counters.cpu.drain_limit_hits);
            break;
        }
        Message copy;
        memcpy(&copy, &slot, sizeof copy);
        copy.header.message_type = type;  // the value that was checked, whatever the copy saw
        if (copy.header.payload_size > kMessagePayloadMax) copy.header.payload_size = kMessagePayloadMax;
        release_slot(slot, counters.sints[sint]);
        ++taken;
        bump(counters.sints[sint].messages);
        handler.on_message(handler.context, copy);
    }
    return taken != 0;
}

bool scan_event_flags(uint32_t cpu, uint32_t sint, const SintHandler& handler) {
    uint64_t* words = state.pages[cpu].event_flags + sint * kFlagWordsPerSint;
    SintStats& counters = state.counters[cpu].sints[sint];
    bool found = false;
    for (uint32_t word = 0; word < kFlagWordsPerSint; ++word) {
        if (__atomic_load_n(&words[word], __ATOMIC_RELAXED) == 0) continue;
        uint64_t bits = __atomic_exchange_n(&words[word], 0, __ATOMIC_ACQ_REL);
        while (bits != 0) {
            const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(bits));
            bits &= bits - 1;
            found = true;
            bump(counters.events);
            handler.on_event(handler.context, word * 64 + bit);
        }
    }
    return found;
}

// Everything pending for this CPU in every attached SINT. Interrupts are disabled.
bool dispatch_this_cpu() {
    const uint32_t cpu = this_cpu().index;
    bool found = false;
    for (uint32_t sint = 0; sint < kSintCount; ++sint) {
        Sint& entry = state.sints[sint];
        if (!__atomic_load_n(&entry.attached, __ATOMIC_ACQUIRE)) continue;
        const SintHandler handler = entry.handler;
        if (handler.on_message && drain_slot(cpu, sint, handler)) found = true;
        if (handler.on_event && scan_event_flags(cpu, sint, handler)) found = true;
    }
    return found;
}

void on_interrupt(void*) {
    CpuStats& counters = state.counters[this_cpu().index].cpu;
    bump(counters.interrupts);
    if (!dispatch_this_cpu()) bump(counters.empty_interrupts);
}

// --- Per-CPU register programming (each runs on the CPU it programs) ----------------------------

void enable_this_cpu(void*) {
    const CpuPages& pages = state.pages[this_cpu().index];
    x86::wrmsr(kMsrSimp, reinterpret_cast<uint64_t>(pages.messages) | kPageEnable);  // identity map: GPA
    x86::wrmsr(kMsrSiefp, reinterpret_cast<uint64_t>(pages.event_flags) | kPageEnable);
    x86::wrmsr(kMsrScontrol, kScontrolEnable);
}

struct SintWrite {
    uint32_t sint;
    uint64_t value;
};

void write_sint_this_cpu(void* argument) {
    const auto& write = *static_cast<const SintWrite*>(argument);
    x86::wrmsr(kMsrSint0 + write.sint, write.value);
}

// A message or flag may have landed while the SINT was masked; its interrupt is held by the host
// until the unmask, but taking it now costs nothing and does not depend on that.
void poll_this_cpu(void*) {
    platform::InterruptsDisabled no_interrupts;
    dispatch_this_cpu();
}

void on_each_online_cpu(smp::CpuFunction function, void* argument) {
    const uint64_t online = smp::online_mask();
    for (uint32_t cpu = 0; cpu < abi::kMaxVcpus; ++cpu)
        if (online & (1ull << cpu)) smp::run_on_cpu(cpu, function, argument);
}

void* zeroed_page() {
    const uint64_t page = mm::allocate_pages(0);
    if (page != 0) memset(reinterpret_cast<void*>(page), 0, abi::kPageSize);
    return reinterpret_cast<void*>(page);
}

}  // namespace

bool init() {
    if (state.ready || !hv::available() || !hv::synic_available()) return false;
    if (x86::rdmsr(kMsrSversion) != kSynicVersion) {
        kprint("synic: unknown SynIC version %lu: not used\n", x86::rdmsr(kMsrSversion));
        return false;
    }
    const uint64_t online = smp::online_mask();
    for (uint32_t cpu = 0; cpu < abi::kMaxVcpus; ++cpu) {
        if (!(online & (1ull << cpu))) continue;
        state.pages[cpu].messages = static_cast<Message*>(zeroed_page());
        state.pages[cpu].event_flags = static_cast<uint64_t*>(zeroed_page());
        if (!state.pages[cpu].messages || !state.pages[cpu].event_flags) {
            kprint("synic: out of memory for CPU %u's pages\n", cpu);
            return false;  // a page or two stay allocated; the machine is out of memory anyway
        }
    }
    state.vector = interrupts::claim_vector(on_interrupt, nullptr, "synic");
    if (state.vector == 0) {
        kprint("synic: no free interrupt vector\n");
        return false;
    }
    on_each_online_cpu(enable_this_cpu, nullptr);
    state.ready = true;
    return true;
}

bool available() { return state.ready; }
uint8_t vector() { return state.vector; }

bool attach(uint32_t sint, const SintHandler& handler) {
    if (!state.ready || sint >= kSintCount) return false;
    MutexGuard guard(state.attach_lock);
    Sint& entry = state.sints[sint];
    if (entry.attached) return false;
    entry.handler = handler;
    __atomic_store_n(&entry.attached, true, __ATOMIC_RELEASE);
    SintWrite write{sint, state.vector};  // unmasked, no auto-EOI, no polling
    on_each_online_cpu(write_sint_this_cpu, &write);
    on_each_online_cpu(poll_this_cpu, nullptr);
    return true;
}

void detach(uint32_t sint) {
    if (!state.ready || sint >= kSintCount) return;
    MutexGuard guard(state.attach_lock);
    Sint& entry = state.sints[sint];
    if (!entry.attached) return;
    __atomic_store_n(&entry.attached, false, __ATOMIC_RELEASE);
    // A handler runs with interrupts disabled, so each CPU serves this call only after any handler
    // that saw the SINT attached has returned.
    SintWrite write{sint, kSintMasked};
    on_each_online_cpu(write_sint_this_cpu, &write);
    entry.handler = {};
}

uint64_t* event_flag_words(uint32_t cpu, uint32_t sint) {
    if (!state.ready || cpu >= abi::kMaxVcpus || sint >= kSintCount || !state.pages[cpu].event_flags) return nullptr;
    return state.pages[cpu].event_flags + sint * kFlagWordsPerSint;
}

Message* message_slot(uint32_t cpu, uint32_t sint) {
    if (!state.ready || cpu >= abi::kMaxVcpus || sint >= kSintCount || !state.pages[cpu].messages) return nullptr;
    return &state.pages[cpu].messages[sint];
}

SintStats stats(uint32_t cpu, uint32_t sint) {
    if (cpu >= abi::kMaxVcpus || sint >= kSintCount) return {};
    const SintStats& counters = state.counters[cpu].sints[sint];
    return {read(counters.messages), read(counters.end_of_messages), read(counters.events)};
}

CpuStats cpu_stats(uint32_t cpu) {
    if (cpu >= abi::kMaxVcpus) return {};
    const CpuStats& counters = state.counters[cpu].cpu;
    return {read(counters.interrupts), read(counters.empty_interrupts), read(counters.drain_limit_hits)};
}

}  // namespace hvkvm::guest::synic
