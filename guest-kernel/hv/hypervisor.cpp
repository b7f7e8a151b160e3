#include "hv/hypervisor.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/per_cpu.h"
#include "arch/x86_64/platform/platform.h"
#include "lib/string.h"

extern "C" char hypercall_page[];

namespace hvkvm::guest::hv {
namespace {

using namespace abi::hv;

// Guest OS id, in the TLFS's open-source layout: bit 63 set, OS type 0x7f ("other"), version.
constexpr uint64_t kGuestOsId = (1ull << 63) | (0x7full << 56) | (0x000100ull << 16);

// The privileges the kernel relies on (CPUID 0x40000003 EAX/EBX).
constexpr uint32_t kRequiredMsrPrivileges = kPrivilegeHypercallMsrs | kPrivilegeVpIndex;

// Set once by the boot CPU; read-only afterwards.
struct Interface {
    bool available = false;
    uint32_t spin_count = kSpinCountNeverNotify;
    uint32_t host_cpus = 0;
} interface;

// Each CPU's input/output page for memory-based calls (which must not cross a page). Static, so
// that the hypervisor interface needs nothing of the memory manager.
struct alignas(abi::kPageSize) CallPage {
    uint8_t bytes[abi::kPageSize];
};
CallPage call_pages[abi::kMaxVcpus];

const x86::CpuidResult& leaf(uint32_t function) { return x86::cpu_features().hypervisor_leaves[function - kCpuidVendor]; }

// The calling CPU's page for memory-based calls. Callers keep interrupts disabled while they use it.
uint8_t* call_page() { return call_pages[this_cpu().index].bytes; }

}  // namespace

bool init() {
    const x86::CpuFeatures& features = x86::cpu_features();
    if (!features.hypervisor || features.max_hypervisor_leaf < kCpuidLimits) return false;
    if (leaf(kCpuidInterface).eax != kInterfaceSignature) return false;
    if ((leaf(kCpuidFeatures).eax & kRequiredMsrPrivileges) != kRequiredMsrPrivileges) return false;

    x86::wrmsr(kMsrGuestOsId, kGuestOsId);
    const uint64_t page = reinterpret_cast<uint64_t>(hypercall_page);  // identity-mapped: GPA
    x86::wrmsr(kMsrHypercall, page | kHypercallEnable);
    if (!(x86::rdmsr(kMsrHypercall) & kHypercallEnable)) return false;

    interface.spin_count = leaf(kCpuidRecommendations).ebx;
    interface.host_cpus = leaf(kCpuidLimits).ebx;
    interface.available = true;
    return true;
}

bool available() { return interface.available; }
uint32_t recommended_spin_count() { return interface.spin_count; }
uint32_t host_logical_processors() { return interface.host_cpus; }
bool synic_available() { return interface.available && (leaf(kCpuidFeatures).eax & kPrivilegeSynicMsrs); }

uint64_t hypercall(uint64_t control, uint64_t input, uint64_t output) {
    register uint64_t r8 __asm__("r8") = output;  // no constraint letter names r8
    uint64_t result;
    __asm__ volatile("call *%[page]"
                     : "=a"(result), "+c"(control), "+d"(input), "+r"(r8)
                     : [page] "r"(hypercall_page)
                     : "r9", "r10", "r11", "memory", "cc");
    return result;
}

Status notify_long_spin_wait(uint32_t spin_count) {
    return status_of(hypercall(make_control(CallCode::kNotifyLongSpinWait, true), spin_count, 0));
}

Status post_message(uint32_t connection_id, uint32_t message_type, const void* payload, uint32_t size) {
    if (size > kMessagePayloadMax) return Status::kInvalidParameter;
    platform::InterruptsDisabled no_interrupts;  // the call page is this CPU's
    auto* input = reinterpret_cast<PostMessageInput*>(call_page());
    input->connection_id = connection_id;
    input->reserved = 0;
    input->message_type = message_type;
    input->payload_size = size;
    memcpy(input->payload, payload, size);
    return status_of(hypercall(make_control(CallCode::kPostMessage), reinterpret_cast<uint64_t>(input), 0));
}

Status signal_event(uint32_t connection_id, uint16_t flag_number) {
    const uint64_t input = connection_id | (uint64_t{flag_number} << 32);
    return status_of(hypercall(make_control(CallCode::kSignalEvent, true), input, 0));
}

Status get_reference_time(uint64_t& time_100ns) {
    platform::InterruptsDisabled no_interrupts;
    auto* output = reinterpret_cast<uint64_t*>(call_page());
    const Status status = status_of(hypercall(make_control(CallCode::kGetReferenceTime), 0, reinterpret_cast<uint64_t>(output)));
    if (status == Status::kSuccess) time_100ns = *output;
    return status;
}

Status kick_vp(uint32_t vp_index) { return status_of(hypercall(make_control(CallCode::kKickVp, true), vp_index, 0)); }

Status wait_for_kick(uint64_t timeout_100ns) {
    return status_of(hypercall(make_control(CallCode::kWaitForKick, true), timeout_100ns, 0));
}

uint32_t vp_index() { return static_cast<uint32_t>(x86::rdmsr(kMsrVpIndex)); }
uint64_t reference_counter_100ns() { return x86::rdmsr(kMsrTimeRefCount); }

}  // namespace hvkvm::guest::hv
