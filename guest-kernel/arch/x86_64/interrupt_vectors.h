// Interrupt vector assignments. Higher vectors have higher LAPIC priority.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::x86 {

inline constexpr uint8_t kFirstDeviceVector = 0x30;    // claimed by drivers (kernel/interrupts.h) ...
inline constexpr uint8_t kLastDeviceVector = 0xdf;     // ... up to here; the fixed vectors are above
inline constexpr uint8_t kTimerVector = 0xec;         // LAPIC timer: per-CPU timer queue, time slices
inline constexpr uint8_t kCallFunctionVector = 0xfb;  // IPI: run queued cross-CPU function calls
inline constexpr uint8_t kRescheduleVector = 0xfd;    // IPI: the target should run its scheduler
inline constexpr uint8_t kSpuriousVector = 0xff;

}  // namespace hvkvm::guest::x86
