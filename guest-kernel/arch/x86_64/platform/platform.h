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
}  // namespace detail

inline void disable_interrupts() {
    if (PvmControlPage* page = this_cpu().pvm_control) {
        detail::pvm_vif(page) = 0;
        __asm__ volatile("" ::: "memory");
    } else {
        __asm__ volatile("cli" ::: "memory");
    }
}

inline void enable_interrupts() {
    if (PvmControlPage* page = this_cpu().pvm_control) {
        __asm__ volatile("" ::: "memory");
        detail::pvm_vif(page) = 1;
        __asm__ volatile("" ::: "memory");
        // An interrupt held back while VIF was 0 is delivered at the next trapping instruction.
        if (page->flags & detail::kPvmInterruptPending) __asm__ volatile("sti" ::: "memory");
    } else {
        __asm__ volatile("sti" ::: "memory");
    }
}

inline bool interrupts_enabled() {
    if (PvmControlPage* page = this_cpu().pvm_control) return detail::pvm_vif(page) & detail::kPvmInterruptFlag;
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
