#include "arch/x86_64/apic.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/cpu_features.h"
#include "arch/x86_64/interrupt_vectors.h"
#include "hvkvm/abi/boot.h"
#include "arch/x86_64/time.h"

namespace hvkvm::guest::apic {
namespace {

constexpr uint32_t kMsrApicBase = 0x1b;
constexpr uint64_t kApicBaseEnable = 1ull << 11, kApicBaseX2apic = 1ull << 10;
constexpr uint32_t kMsrTscDeadline = 0x6e0;
constexpr uint32_t kX2apicMsrBase = 0x800;

// Register offsets (xAPIC MMIO); the x2APIC MSR is 0x800 + offset / 16.
enum Register : uint32_t {
    kId = 0x20,
    kTaskPriority = 0x80,
    kEoi = 0xb0,
    kSpuriousVectorRegister = 0xf0,
    kInterruptCommandLow = 0x300,
    kInterruptCommandHigh = 0x310,
    kLvtTimer = 0x320,
    kLvtThermal = 0x330,
    kLvtPerformance = 0x340,
    kLvtLint0 = 0x350,
    kLvtLint1 = 0x360,
    kLvtError = 0x370,
    kTimerInitialCount = 0x380,
    kTimerCurrentCount = 0x390,
    kTimerDivide = 0x3e0,
};

constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kTimerModeTscDeadline = 2u << 17;
constexpr uint32_t kSoftwareEnable = 1u << 8;
constexpr uint32_t kDeliveryStatusPending = 1u << 12;
constexpr uint32_t kShorthandAllExcludingSelf = 3u << 18;
constexpr uint32_t kLevelAssert = 1u << 14;

// Decided once by the boot CPU; the same for every CPU.
struct ApicMode {
    bool x2apic = false;
    bool tsc_deadline = false;
    uint64_t timer_ticks_per_ms = 0;  // one-shot mode only
} mode;

volatile uint32_t* mmio_register(uint32_t offset) {
    return reinterpret_cast<volatile uint32_t*>(abi::kLocalApicGpa + offset);
}

void write_register(uint32_t offset, uint32_t value) {
    if (mode.x2apic) x86::wrmsr(kX2apicMsrBase + offset / 16, value);
    else *mmio_register(offset) = value;
}

uint32_t read_register(uint32_t offset) {
    if (mode.x2apic) return static_cast<uint32_t>(x86::rdmsr(kX2apicMsrBase + offset / 16));
    return *mmio_register(offset);
}

// For one-shot mode: LAPIC timer ticks per millisecond, measured against the TSC.
uint64_t calibrate_timer() {
    write_register(kTimerDivide, 0xb);  // divide by 1
    write_register(kLvtTimer, kLvtMasked | x86::kTimerVector);
    write_register(kTimerInitialCount, 0xffffffff);
    time::spin_for_ns(1000000);
    const uint32_t elapsed = 0xffffffff - read_register(kTimerCurrentCount);
    write_register(kTimerInitialCount, 0);
    return elapsed;
}

}  // namespace

void init_boot_cpu() {
    mode.x2apic = x86::cpu_features().x2apic;
    mode.tsc_deadline = x86::cpu_features().tsc_deadline;
    init_this_cpu();
    if (!mode.tsc_deadline) mode.timer_ticks_per_ms = calibrate_timer();
}

void init_this_cpu() {
    uint64_t base = x86::rdmsr(kMsrApicBase) | kApicBaseEnable;
    if (mode.x2apic) base |= kApicBaseX2apic;
    x86::wrmsr(kMsrApicBase, base);
    // Software-enable first: while the APIC is software-disabled, LVT mask bits cannot be cleared.
    write_register(kSpuriousVectorRegister, kSoftwareEnable | x86::kSpuriousVector);
    write_register(kTaskPriority, 0);
    static constexpr uint32_t kUnusedLvts[] = {kLvtThermal, kLvtPerformance, kLvtLint0, kLvtLint1, kLvtError};
    for (uint32_t lvt : kUnusedLvts) write_register(lvt, kLvtMasked);
    write_register(kLvtTimer, x86::kTimerVector | (mode.tsc_deadline ? kTimerModeTscDeadline : 0));
}

bool using_x2apic() { return mode.x2apic; }
bool using_tsc_deadline() { return mode.tsc_deadline; }

uint32_t this_apic_id() {
    const uint32_t id = read_register(kId);
    return mode.x2apic ? id : id >> 24;
}

void end_of_interrupt() { write_register(kEoi, 0); }

void send_ipi(uint32_t apic_id, uint8_t vector) {
    if (mode.x2apic) {
        x86::wrmsr(kX2apicMsrBase + kInterruptCommandLow / 16, (uint64_t{apic_id} << 32) | kLevelAssert | vector);
        return;
    }
    *mmio_register(kInterruptCommandHigh) = apic_id << 24;
    *mmio_register(kInterruptCommandLow) = kLevelAssert | vector;
    while (*mmio_register(kInterruptCommandLow) & kDeliveryStatusPending) x86::pause();
}

void send_ipi_to_all_others(uint8_t vector) {
    if (mode.x2apic) {
        x86::wrmsr(kX2apicMsrBase + kInterruptCommandLow / 16, kShorthandAllExcludingSelf | kLevelAssert | vector);
        return;
    }
    *mmio_register(kInterruptCommandLow) = kShorthandAllExcludingSelf | kLevelAssert | vector;
    while (*mmio_register(kInterruptCommandLow) & kDeliveryStatusPending) x86::pause();
}

void arm_timer_at_tsc(uint64_t tsc_deadline) {
    if (mode.tsc_deadline) {
        x86::wrmsr(kMsrTscDeadline, tsc_deadline);
        return;
    }
    if (tsc_deadline == 0) {
        write_register(kTimerInitialCount, 0);
        return;
    }
    const uint64_t now = x86::rdtsc();
    const uint64_t delta_ns = tsc_deadline > now ? time::tsc_to_ns(tsc_deadline - now) : 0;
    uint64_t ticks = delta_ns * mode.timer_ticks_per_ms / 1000000;
    if (ticks == 0) ticks = 1;
    if (ticks > 0xffffffff) ticks = 0xffffffff;  // fires early; the timer queue re-arms
    write_register(kTimerInitialCount, static_cast<uint32_t>(ticks));
}

}  // namespace hvkvm::guest::apic
