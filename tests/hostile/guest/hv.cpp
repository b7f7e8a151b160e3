#include "hv.h"

#include "guest.h"

namespace hostile::hv {
namespace {

using namespace hvkvm::abi::hv;

constexpr uint64_t kGuestOsId = (1ull << 63) | (0x7full << 56) | 0x4854;  // open-source layout, "HT"

alignas(4096) uint8_t hypercall_page[4096];
uint64_t enabled_page;  // 0 until enable() succeeds
// One input page per vCPU for memory-based calls.
alignas(4096) uint8_t input_pages[kMaxCpus][4096];

}  // namespace

uint64_t default_page() { return reinterpret_cast<uint64_t>(hypercall_page); }

bool enable(uint64_t page_gpa) {
    if (probe_wrmsr(kMsrGuestOsId, kGuestOsId) != kNoFault) return false;
    if (probe_wrmsr(kMsrHypercall, page_gpa | kHypercallEnable) != kNoFault) return false;
    atomic_store(enabled_page, page_gpa);
    return true;
}

bool enable() { return enable(default_page()); }

bool page_enabled() { return atomic_load(enabled_page) != 0; }

uint64_t call(uint64_t control, uint64_t input, uint64_t output) {
    register uint64_t r8 __asm__("r8") = output;
    uint64_t result;
    __asm__ volatile("call *%[page]"
                     : "=a"(result), "+c"(control), "+d"(input), "+r"(r8)
                     : [page] "r"(atomic_load(enabled_page))
                     : "r9", "r10", "r11", "memory", "cc");
    return result;
}

Status call_status(uint64_t control, uint64_t input, uint64_t output) { return status_of(call(control, input, output)); }

Status notify_long_spin_wait(uint32_t spin_count) {
    return call_status(make_control(CallCode::kNotifyLongSpinWait, true), spin_count, 0);
}

Status post_message(uint32_t connection_id, uint32_t message_type, const void* payload, uint32_t size) {
    auto* input = reinterpret_cast<PostMessageInput*>(input_pages[this_cpu()]);
    input->connection_id = connection_id;
    input->reserved = 0;
    input->message_type = message_type;
    input->payload_size = size;
    memcpy(input->payload, payload, size <= kMessagePayloadMax ? size : kMessagePayloadMax);
    return call_status(make_control(CallCode::kPostMessage), reinterpret_cast<uint64_t>(input), 0);
}

Status signal_event(uint32_t connection_id) {
    return call_status(make_control(CallCode::kSignalEvent, true), connection_id, 0);
}

Status kick_vp(uint64_t vp_index) { return call_status(make_control(CallCode::kKickVp, true), vp_index, 0); }

Status wait_for_kick(uint64_t timeout_100ns) {
    return call_status(make_control(CallCode::kWaitForKick, true), timeout_100ns, 0);
}

void console_write(const char* text, uint64_t size) {
    while (size) {
        const uint32_t chunk = size < kMessagePayloadMax ? static_cast<uint32_t>(size) : kMessagePayloadMax;
        post_message(kConsoleConnectionId, kMessageTypeConsoleText, text, chunk);
        text += chunk;
        size -= chunk;
    }
}

}  // namespace hostile::hv
