// The platform layer: the only code that knows whether this vCPU runs in PVM mode (interrupt flag
// in the control page, conversion by wrmsr) or classic mode (cli/sti/hlt). Everything else uses
// these functions and works on both.
#pragma once

#include <stdint.h>

#include "arch/x86_64/per_cpu.h"

namespace hvkvm::guest::platform {

enum class Kind { kPvm, kClassic };

// Switches this vCPU to PVM mode (native-speed supervisor code). Requires the GDT, TSS and IDT
// register to be loaded already. Only valid on PVM hosts.
void convert_to_pvm(PerCpu& cpu);

Kind kind();  // of this CPU
const char* name(Kind kind);

namespace detail {
inline constexpr uint64_t kPvmInterruptFlag = 1u << 0;
inline constexpr uint64_t kPvmInterruptPending = 1u << 8;
inline volatile uint8_t& pvm_vif(PvmControlPage* page) { return *reinterpret_cast<volatile uint8_t*>(&page->flags); }

// This CPU's control-page flags, reached in one %gs-relative instruction: each CPU's control page
// lies right before its PerCpu (per_cpu.h), where GS points. Finding the page through
// this_cpu().pvm_control and then writing it would take several instructions, and a thread
// preempted in between and resumed on another CPU would write the *previous* CPU's VIF: clearing
// it under that CPU's idle loop just before its hlt halts that vCPU for good.
inline void write_pvm_vif(uint8_t value) {
    __asm__ volatile("movb %0, %%gs:%c1" : : "ri"(value), "i"(kPvmControlPageGsOffset) : "memory");
}
inline uint64_t read_pvm_flags() {
    uint64_t flags;
    __asm__ volatile("movq %%gs:%c1, %0" : "=r"(flags) : "i"(kPvmControlPageGsOffset) : "memory");
    return flags;
}
}  // namespace detail

// Whether this CPU runs converted is the same on every CPU, so a migration between the check and
// the access below changes nothing.
inline void disable_interrupts() {
    if (this_cpu().pvm_control) {
        detail::write_pvm_vif(0);
    } else {
        __asm__ volatile("cli" ::: "memory");
    }
}

inline void enable_interrupts() {
    if (this_cpu().pvm_control) {
        detail::write_pvm_vif(1);
        // An interrupt held back while VIF was 0 is delivered at the next trapping instruction.
        if (detail::read_pvm_flags() & detail::kPvmInterruptPending) __asm__ volatile("sti" ::: "memory");
    } else {
        __asm__ volatile("sti" ::: "memory");
    }
}

inline bool interrupts_enabled() {
    if (this_cpu().pvm_control) return detail::read_pvm_flags() & detail::kPvmInterruptFlag;
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0" : "=r"(flags));
    return flags & (1u << 9);
}

// Returns the previous state for restore_interrupts().
inline bool save_and_disable_interrupts() {
    const bool was_enabled = interrupts_enabled();
    disable_interrupts();
    return was_enabled;
}

inline void restore_interrupts(bool enabled) {
    if (enabled) enable_interrupts();
}

// Enables interrupts and halts until one arrives, without a lost-wakeup window.
void safe_halt();

// Called by the trap handler for every interrupt: if it landed between enabling interrupts and
// the hlt in safe_halt(), make the return skip the hlt.
void step_over_interrupted_halt(uint64_t& rip);

class InterruptsDisabled {
public:
    InterruptsDisabled() : was_enabled_(save_and_disable_interrupts()) {}
    ~InterruptsDisabled() { restore_interrupts(was_enabled_); }
    InterruptsDisabled(const InterruptsDisabled&) = delete;
    InterruptsDisabled& operator=(const InterruptsDisabled&) = delete;

private:
    bool was_enabled_;
};

}  // namespace hvkvm::guest::platform
