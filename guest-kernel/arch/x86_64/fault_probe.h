// Accesses that may fault, reported as a result instead of a crash. Each probe's faulting
// instruction is listed in the exception-fixup table (section .exception_fixups); the trap
// handler resumes at the probe's failure path when a #PF or #GP hits a listed instruction.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::x86 {

struct ExceptionFixup {
    uint64_t faulting_rip;
    uint64_t resume_rip;
};

// Returns the resume address for a fault at `rip`, or 0 if `rip` is not a probe.
uint64_t find_exception_fixup(uint64_t rip);

bool probe_read(uint64_t address, uint64_t& value);
bool probe_write(uint64_t address, uint64_t value);
bool probe_rdmsr(uint32_t msr, uint64_t& value);
bool probe_wrmsr(uint32_t msr, uint64_t value);

}  // namespace hvkvm::guest::x86
