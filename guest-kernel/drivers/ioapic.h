// The I/O APIC (at abi::kIoApicGpa, emulated by the host kernel): routes each input pin to a
// vector on one CPU. Every register access is two MMIO accesses (select, then read or write the
// window), each trapping to the host, so pins are programmed once and left alone.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::ioapic {

enum class Trigger { kEdge, kLevel };

// Boot CPU: masks every pin (nothing is routed until a driver asks).
void init();
uint32_t pin_count();

// Delivers `pin` as `vector` (fixed, physical destination, active high) to the CPU with APIC id
// `destination`, unmasked. False for a pin the IOAPIC does not have.
bool route(uint32_t pin, uint8_t vector, uint32_t destination, Trigger trigger);
void mask(uint32_t pin);

}  // namespace hvkvm::guest::ioapic
