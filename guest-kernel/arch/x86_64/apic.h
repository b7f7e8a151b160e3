// The local APIC of the current CPU: x2APIC (MSR access) where the CPU has it, otherwise xAPIC
// (MMIO at 0xfee00000). In both, every register access traps to the host's in-kernel LAPIC
// (a few microseconds on PVM hosts), so callers keep accesses few: one EOI per interrupt, one
// write per IPI, one per timer (re)arm.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::apic {

// Boot CPU first (decides x2APIC vs xAPIC, calibrates the timer if needed), then each AP.
void init_boot_cpu();
void init_this_cpu();

bool using_x2apic();
bool using_tsc_deadline();
uint32_t this_apic_id();

void end_of_interrupt();
void send_ipi(uint32_t apic_id, uint8_t vector);
void send_ipi_to_all_others(uint8_t vector);

// One-shot timer interrupt (kTimerVector) at the given TSC value; 0 disarms.
void arm_timer_at_tsc(uint64_t tsc_deadline);

}  // namespace hvkvm::guest::apic
