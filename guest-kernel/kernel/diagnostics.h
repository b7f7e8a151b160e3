// Deliberate faults (cmdline crash=KIND) to exercise the crash path end to end, and a small
// self-test (cmdline selftest) that is cheap enough to run unconverted in classic mode.
#pragma once

#include "lib/string_view.h"

namespace hvkvm::guest {

// Kinds: page-fault, general-protection, invalid-opcode, divide-error, breakpoint, panic,
// triple-fault, stack-overflow (in a thread, into its guard page), software-interrupt (int $0x80:
// on PVM hosts a KVM internal error, elsewhere an unexpected interrupt). An unknown kind is reported and ends the run with the failure status.
[[noreturn]] void trigger_crash(StringView kind);

// Returns true if every check passed; prints one line per check.
bool run_selftest();

}  // namespace hvkvm::guest
