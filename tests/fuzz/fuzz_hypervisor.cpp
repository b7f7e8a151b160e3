// libFuzzer target: the hypercall dispatcher and synthetic MSRs (vmm/hypercalls/Hypervisor), fed
// register values (MSR writes, hypercall control/input/output words, doorbell values) and guest
// memory (inputs the calls read, the hypercall page itself) in any order. Aborts on a result the
// documentation does not allow; ASan/UBSan catch the rest.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "fuzz_input.h"
#include "hvkvm/abi/hypercall.h"
#include "hypercalls/hypercall_page.h"
#include "hypercalls/hypervisor.h"
#include "kvm/guest_memory.h"

using namespace hvkvm::vmm;
using namespace hvkvm::abi::hv;

namespace {

bool documented(uint64_t result) {
    if (result >> 16) return false;  // no rep calls: reps completed stays 0, and nothing else is set
    switch (status_of(result)) {
    case Status::kSuccess: case Status::kInvalidHypercallCode: case Status::kInvalidHypercallInput:
    case Status::kInvalidAlignment: case Status::kInvalidParameter: case Status::kAccessDenied:
    case Status::kInvalidVpIndex: case Status::kInvalidConnectionId: case Status::kTimeout:
        return true;
    default: return false;
    }
}

void require(bool condition) {
    if (!condition) std::abort();
}

// An eventfd that is always readable: WaitForKick returns at once instead of blocking the fuzzer.
int stopped_fd() {
    static const int fd = [] {
        const int made = ::eventfd(1, EFD_CLOEXEC);
        require(made >= 0);
        return made;
    }();
    return fd;
}

uint32_t synthetic_msr(FuzzedDataProvider& in) {
    return in.ConsumeBool() ? in.ConsumeIntegral<uint32_t>()
                            : kSyntheticMsrFirst + in.ConsumeIntegralInRange<uint32_t>(0, 0xff);
}

uint64_t control_word(FuzzedDataProvider& in) {
    static constexpr CallCode kCodes[] = {CallCode::kNotifyLongSpinWait, CallCode::kPostMessage, CallCode::kSignalEvent,
                                          CallCode::kGetReferenceTime,  CallCode::kKickVp,      CallCode::kWaitForKick};
    if (in.ConsumeBool()) return in.ConsumeIntegral<uint64_t>();
    uint64_t control = make_control(in.PickValueInArray(kCodes), in.ConsumeBool());
    if (in.ConsumeBool()) control |= 1ull << in.ConsumeIntegralInRange(17, 63);
    return control;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    GuestMemory& memory = hvkvm::fuzz::guest_memory();
    hvkvm::fuzz::clear(memory);
    const uint32_t vcpus = in.ConsumeIntegralInRange<uint32_t>(1, 64);
    Hypervisor hypervisor(HypervisorConfig{vcpus, 2'600'000}, memory);
    hypervisor.add_message_connection(kConsoleConnectionId, [](uint32_t type, std::span<const uint8_t> payload) {
        require(payload.size() <= kMessagePayloadMax);
        return type == kMessageTypeConsoleText ? Status::kSuccess : Status::kInvalidParameter;
    });
    hypervisor.add_event_connection(kLoopbackEventConnectionId);

    while (in.remaining_bytes() > 0) {
        const uint32_t vp = in.ConsumeIntegralInRange<uint32_t>(0, vcpus - 1);
        switch (in.ConsumeIntegralInRange(0, 6)) {
        case 0: hypervisor.write_msr(vp, synthetic_msr(in), hvkvm::fuzz::guest_address(in, memory)); break;
        case 1: hypervisor.read_msr(vp, synthetic_msr(in)); break;
        case 2: {
            const uint64_t control = control_word(in);
            const uint64_t input = hvkvm::fuzz::guest_address(in, memory), output = hvkvm::fuzz::guest_address(in, memory);
            require(documented(hypervisor.hypercall(vp, {control, input, output}, stopped_fd())));
            break;
        }
        case 3: require(documented(hypervisor.signal_event_doorbell(in.ConsumeIntegral<uint32_t>()))); break;
        case 4: require(documented(hypervisor.kick_vp_doorbell(in.ConsumeIntegral<uint32_t>()))); break;
        case 5: hvkvm::fuzz::write_guest_bytes(in, memory); break;
        case 6: {
            // Where the page's `out` is said to be, the page's code must be.
            const uint16_t port = in.PickValueInArray({kHypercallPort, kSignalEventPort, kKickVpPort});
            if (const auto gpa = hypervisor.page_out_gpa(port)) {
                const auto code = hypercall_page_code().subspan(*hypercall_page_out_offset(port), kHypercallPageOutLength);
                require(std::memcmp(memory.span(*gpa, code.size()).data(), code.data(), code.size()) == 0);
            }
            break;
        }
        }
    }
    require(hypervisor.final_call_counts().size() <= 9);  // known codes, unknown codes, events, kicks
    return 0;
}
