// The guest side of the boot ABI's report channel: boot-phase timestamps and milestones, the
// crash record, and ending the run through the VMM's debug-exit port.
#pragma once

#include "hvkvm/abi/boot.h"

namespace hvkvm::guest {

abi::GuestReport& guest_report();

// Records the TSC for `phase` (no exit).
void boot_phase_reached(abi::BootPhase phase);
// Records the TSC and tells the VMM (one PIO exit), so that the VMM can time the phase itself.
void boot_milestone(abi::BootPhase phase);

void report_platform(abi::GuestPlatform platform);

// Opens or closes the VMM's measurement window (one PIO exit each): the end-of-run report then
// has KVM's counters over the window alone, for a benchmark's per-operation exits and interrupts.
void open_measurement_window();
void close_measurement_window();

// Claims the crash record; only the first crashing CPU gets it (returns false for the others).
bool claim_crash_record();

[[noreturn]] void exit_to_vmm(abi::GuestExitCode code);

}  // namespace hvkvm::guest
