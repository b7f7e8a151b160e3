// Interrupts and exceptions: the kernel's side of the trap path (handle_trap, called by the arch
// entry stubs for every vector), the handlers of the fixed vectors, and vectors that drivers
// claim for their devices.
//
// Device interrupts: a driver claims a free vector with its handler, programs its device (an
// IOAPIC pin, an MSI) to deliver that vector, and releases it after silencing the device. The
// kernel calls the handler, then signals end-of-interrupt: a level-triggered device must be
// acknowledged inside the handler, before the EOI, or it interrupts again.
#pragma once

#include <stdint.h>

#include "arch/x86_64/trap_frame.h"

namespace hvkvm::guest::interrupts {

// An exception handler returns true if it dealt with the exception (execution resumes at
// frame.rip, which it may have changed); false means unhandled, which crashes the guest.
using ExceptionHandler = bool (*)(x86::TrapFrame& frame);
// A fixed-vector handler signals end-of-interrupt itself.
using FixedHandler = void (*)(x86::TrapFrame& frame);
using DeviceHandler = void (*)(void* context);

// Boot time and tests; handlers are shared by all CPUs.
void set_exception_handler(uint8_t vector, ExceptionHandler handler);
void set_handler(uint8_t vector, FixedHandler handler);

// A free vector in [x86::kFirstDeviceVector, x86::kLastDeviceVector] now delivering to
// `handler(context)`, or 0 if none is free. `owner` names the driver in diagnostics.
uint8_t claim_vector(DeviceHandler handler, void* context, const char* owner);
// The device must no longer send the vector.
void release_vector(uint8_t vector);
uint32_t free_device_vectors();

// Device interrupts delivered on `cpu` through `vector` since it was claimed.
uint64_t delivered(uint8_t vector, uint32_t cpu);
// Interrupts that arrived on a device vector nobody had claimed (e.g. still in flight when its
// driver released it): acknowledged and dropped, and counted here.
uint64_t stray_device_interrupts();

}  // namespace hvkvm::guest::interrupts
