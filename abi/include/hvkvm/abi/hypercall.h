// The hypervisor interface the VMM presents to the guest, modelled on Hyper-V's Top Level
// Functional Specification (TLFS) under our own vendor signature: CPUID leaves 0x40000000..5,
// synthetic MSRs, and hypercalls made through a hypercall page that the VMM fills with code that
// works on the current host. Compiled by the VMM and the freestanding guest; every layout is
// pinned with static_assert. docs/hypercalls.md describes the interface for readers.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::abi::hv {

// ---------------------------------------------------------------------------------------------
// CPUID
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kCpuidVendor = 0x40000000;           // EAX max leaf, EBX:ECX:EDX vendor
inline constexpr uint32_t kCpuidInterface = 0x40000001;        // EAX interface signature
inline constexpr uint32_t kCpuidVersion = 0x40000002;
inline constexpr uint32_t kCpuidFeatures = 0x40000003;         // EAX/EBX privileges, EDX features
inline constexpr uint32_t kCpuidRecommendations = 0x40000004;  // EAX hints, EBX spin count
inline constexpr uint32_t kCpuidLimits = 0x40000005;           // EAX max VPs, EBX max LPs
inline constexpr uint32_t kCpuidMaxLeaf = kCpuidLimits;

// The vendor, as 12 bytes in EBX, ECX, EDX. Guests decide on the interface signature, not this.
inline constexpr char kVendorSignature[13] = "hvkvm  hvkvm";
inline constexpr uint32_t kInterfaceSignature = 0x31237648;  // "Hv#1": the Hyper-V interface

// kCpuidFeatures EAX: synthetic MSRs the partition may access.
inline constexpr uint32_t kPrivilegeReferenceCounter = 1u << 1;  // TIME_REF_COUNT
inline constexpr uint32_t kPrivilegeSynicMsrs = 1u << 2;         // SCONTROL .. SINT15 (abi/synic.h)
inline constexpr uint32_t kPrivilegeHypercallMsrs = 1u << 5;     // GUEST_OS_ID, HYPERCALL
inline constexpr uint32_t kPrivilegeVpIndex = 1u << 6;           // VP_INDEX
inline constexpr uint32_t kPrivilegeFrequencyMsrs = 1u << 11;    // TSC_FREQUENCY, APIC_FREQUENCY
// kCpuidFeatures EBX: hypercalls the partition may make.
inline constexpr uint32_t kPrivilegePostMessages = 1u << 4;
inline constexpr uint32_t kPrivilegeSignalEvents = 1u << 5;
// kCpuidFeatures EDX.
inline constexpr uint32_t kFeatureFrequencyMsrs = 1u << 8;
// kCpuidRecommendations EAX.
inline constexpr uint32_t kRecommendRelaxedTiming = 1u << 5;  // nested, overcommitted: no watchdogs
inline constexpr uint32_t kRecommendNoAutoEoi = 1u << 9;      // AutoEOI deprecated (not emulated here)
// kCpuidRecommendations EBX: spin attempts before notifying the hypervisor of a long spin wait.
inline constexpr uint32_t kSpinCountNeverNotify = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Synthetic MSRs (reach the VMM as user-space MSR exits)
// ---------------------------------------------------------------------------------------------
inline constexpr uint32_t kMsrGuestOsId = 0x40000000;     // partition; non-zero enables hypercalls
inline constexpr uint32_t kMsrHypercall = 0x40000001;     // partition; page GPFN | locked | enable
inline constexpr uint32_t kMsrVpIndex = 0x40000002;       // per VP, read-only
inline constexpr uint32_t kMsrTimeRefCount = 0x40000020;  // partition reference time, 100 ns, read-only
inline constexpr uint32_t kMsrTscFrequency = 0x40000022;  // Hz, read-only
inline constexpr uint32_t kMsrApicFrequency = 0x40000023; // Hz, read-only
inline constexpr uint32_t kSyntheticMsrFirst = 0x40000000;
inline constexpr uint32_t kSyntheticMsrLast = 0x400000ff;

inline constexpr uint64_t kHypercallEnable = 1ull << 0;
inline constexpr uint64_t kHypercallLocked = 1ull << 1;
inline constexpr uint64_t kHypercallGpfnShift = 12;

// ---------------------------------------------------------------------------------------------
// Hypercalls. Calling convention (x64): RCX = control (below), RDX = input GPA or, for fast calls,
// the first 8 input bytes; R8 = output GPA or the second 8 input bytes; RAX = result (below).
// The guest calls offset 0 of the hypercall page with a valid stack. RAX, RCX, RDX and R8-R11 are
// clobbered. Memory inputs and outputs must be 8-byte aligned guest RAM that does not cross a page.
// ---------------------------------------------------------------------------------------------
inline constexpr uint64_t kControlCodeMask = 0xffff;        // bits 15:0
inline constexpr uint64_t kControlFast = 1ull << 16;        // register-based input
inline constexpr uint32_t kControlVarHeaderShift = 17;      // bits 26:17, 8-byte units
inline constexpr uint64_t kControlVarHeaderMask = 0x3ffull << kControlVarHeaderShift;
inline constexpr uint32_t kControlRepCountShift = 32;       // bits 43:32
inline constexpr uint64_t kControlRepCountMask = 0xfffull << kControlRepCountShift;
inline constexpr uint32_t kControlRepStartShift = 48;       // bits 59:48
inline constexpr uint64_t kControlRepStartMask = 0xfffull << kControlRepStartShift;
inline constexpr uint64_t kControlReservedMask =
    ~(kControlCodeMask | kControlFast | kControlVarHeaderMask | kControlRepCountMask | kControlRepStartMask);

inline constexpr uint64_t kResultStatusMask = 0xffff;       // bits 15:0
inline constexpr uint32_t kResultRepsCompletedShift = 32;   // bits 43:32

enum class CallCode : uint16_t {
    kNotifyLongSpinWait = 0x0008,  // fast; RDX = spin count (low 32 bits). The VMM yields the vCPU.
    kPostMessage = 0x005c,         // memory input: PostMessageInput
    kSignalEvent = 0x005d,         // fast; RDX = connection id | flag number << 32
    // hvkvm extensions (not in the TLFS; codes chosen clear of Hyper-V's):
    kGetReferenceTime = 0x0f00,    // memory output: uint64_t, the partition reference time (100 ns)
    kKickVp = 0x0f01,              // fast; RDX = VP index. Ends (or pre-empts) that VP's WaitForKick.
    kWaitForKick = 0x0f02,         // fast; RDX = timeout in 100 ns units, 0 = wait without limit.
                                   // Halts this VP until kicked (or the timeout, kTimeout).
};

enum class Status : uint16_t {
    kSuccess = 0x0000,
    kInvalidHypercallCode = 0x0002,
    kInvalidHypercallInput = 0x0003,  // reserved control bits, rep count on a simple call, ...
    kInvalidAlignment = 0x0004,       // input/output GPA misaligned, crossing a page, or not RAM
    kInvalidParameter = 0x0005,
    kAccessDenied = 0x0006,
    kInvalidVpIndex = 0x000e,
    kInvalidConnectionId = 0x0012,
    kInsufficientBuffers = 0x0013,
    kTimeout = 0x0078,
};

inline constexpr uint64_t make_control(CallCode code, bool fast = false) {
    return static_cast<uint64_t>(code) | (fast ? kControlFast : 0);
}
inline constexpr Status status_of(uint64_t result) { return static_cast<Status>(result & kResultStatusMask); }

// HvCallPostMessage input (256 bytes).
inline constexpr uint32_t kMessagePayloadMax = 240;
struct PostMessageInput {
    uint32_t connection_id;  // bits 23:0
    uint32_t reserved;
    uint32_t message_type;   // non-zero, bit 31 clear
    uint32_t payload_size;   // <= kMessagePayloadMax
    uint8_t payload[kMessagePayloadMax];
};
static_assert(offsetof(PostMessageInput, connection_id) == 0);
static_assert(offsetof(PostMessageInput, reserved) == 4);
static_assert(offsetof(PostMessageInput, message_type) == 8);
static_assert(offsetof(PostMessageInput, payload_size) == 12);
static_assert(offsetof(PostMessageInput, payload) == 16);
static_assert(sizeof(PostMessageInput) == 256);

inline constexpr uint32_t kConnectionIdMask = 0x00ffffff;

// Connections the VMM itself provides.
inline constexpr uint32_t kConsoleConnectionId = 0x000100;   // messages: text for the guest console
inline constexpr uint32_t kMessageTypeConsoleText = 1;
inline constexpr uint32_t kLoopbackEventConnectionId = 0x000200;  // events: counted by the VMM

// ---------------------------------------------------------------------------------------------
// Hypercall page: what the VMM writes, and the ports it uses. The page code sends a hypercall to
// the VMM with `out` to kHypercallPort (a user-space exit; the VMM reads the registers). Two calls
// have an exit-free fast path through ioeventfds matched on the 32-bit value written:
//   SignalEvent (fast, flag 0) writes the connection id to kSignalEventPort;
//   KickVp writes the VP index to kKickVpPort.
// When no ioeventfd matches (unknown connection or VP), the write exits to the VMM, which answers
// with a status in RAX and resumes the guest at the page's `ret`.
// ---------------------------------------------------------------------------------------------
inline constexpr uint16_t kHypercallPort = 0x00e0;
inline constexpr uint16_t kSignalEventPort = 0x00e4;
inline constexpr uint16_t kKickVpPort = 0x00e8;

}  // namespace hvkvm::abi::hv
