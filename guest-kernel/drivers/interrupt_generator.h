// Driver for the VMM's interrupt generator (abi/devices.h, config debug.interrupt_generator): a
// test device that raises interrupts on request through each host->guest path the VMM has.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::interrupt_generator {

// The device answers at its ports (an absent device reads as all-ones).
bool present();

// Queued by the device's worker thread: `count` edges on the edge pin, or MSIs.
void raise_edges(uint32_t count);
void raise_msis(uint32_t destination_apic_id, uint8_t vector, uint32_t count);
// Immediate: the level line follows these writes.
void assert_level();
void deassert_level();

uint32_t raised();     // interrupts the device raised so far
uint32_t resamples();  // EOIs of the level line while it was asserted

}  // namespace hvkvm::guest::interrupt_generator
