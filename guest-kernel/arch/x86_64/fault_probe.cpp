#include "arch/x86_64/fault_probe.h"

extern "C" const hvkvm::guest::x86::ExceptionFixup __exception_fixups_start[], __exception_fixups_end[];

// Each probe: `failed` starts 0; the instruction at 1: may fault; the fixup entry sends a fault
// to 3:, which sets `failed` and jumps back past the instruction.
#define PROBE_FIXUP                                         \
    ".pushsection .exception_fixups, \"a\"\n"               \
    ".balign 8\n"                                           \
    ".quad 1b, 3f\n"                                        \
    ".popsection\n"                                         \
    ".pushsection .text.fixup, \"ax\"\n"                    \
    "3: movl $1, %[failed]\n"                               \
    "jmp 2b\n"                                              \
    ".popsection\n"

namespace hvkvm::guest::x86 {

uint64_t find_exception_fixup(uint64_t rip) {
    for (const ExceptionFixup* fixup = __exception_fixups_start; fixup != __exception_fixups_end; ++fixup)
        if (fixup->faulting_rip == rip) return fixup->resume_rip;
    return 0;
}

bool probe_read(uint64_t address, uint64_t& value) {
    uint32_t failed = 0;
    uint64_t result = 0;
    __asm__ volatile("1: movq (%[address]), %[result]\n"
                     "2:\n" PROBE_FIXUP
                     : [result] "+r"(result), [failed] "+r"(failed)
                     : [address] "r"(address)
                     : "memory");
    value = result;
    return !failed;
}

bool probe_write(uint64_t address, uint64_t value) {
    uint32_t failed = 0;
    __asm__ volatile("1: movq %[value], (%[address])\n"
                     "2:\n" PROBE_FIXUP
                     : [failed] "+r"(failed)
                     : [address] "r"(address), [value] "r"(value)
                     : "memory");
    return !failed;
}

bool probe_rdmsr(uint32_t msr, uint64_t& value) {
    uint32_t failed = 0, low = 0, high = 0;
    __asm__ volatile("1: rdmsr\n"
                     "2:\n" PROBE_FIXUP
                     : "+a"(low), "+d"(high), [failed] "+r"(failed)
                     : "c"(msr)
                     : "memory");
    value = (uint64_t{high} << 32) | low;
    return !failed;
}

bool probe_wrmsr(uint32_t msr, uint64_t value) {
    uint32_t failed = 0;
    __asm__ volatile("1: wrmsr\n"
                     "2:\n" PROBE_FIXUP
                     : [failed] "+r"(failed)
                     : "c"(msr), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32))
                     : "memory");
    return !failed;
}

}  // namespace hvkvm::guest::x86
