// Names of the x86 exception vectors, for crash reports on both sides: the guest prints them in its
// register dump and the VMM names the vector from the guest's crash record (which it validates).
#pragma once

#include <stdint.h>

namespace hvkvm::abi {

inline constexpr uint32_t kExceptionVectorCount = 32;

struct ExceptionName {
    const char* mnemonic;     // "#PF"
    const char* description;  // "page fault"
};

inline constexpr ExceptionName kExceptionNames[kExceptionVectorCount] = {
    {"#DE", "divide error"}, {"#DB", "debug"}, {"NMI", "non-maskable interrupt"}, {"#BP", "breakpoint"},
    {"#OF", "overflow"}, {"#BR", "bound range"}, {"#UD", "invalid opcode"}, {"#NM", "device not available"},
    {"#DF", "double fault"}, {"(9)", "coprocessor segment overrun"}, {"#TS", "invalid TSS"},
    {"#NP", "segment not present"}, {"#SS", "stack fault"}, {"#GP", "general protection"}, {"#PF", "page fault"},
    {"(15)", "reserved"}, {"#MF", "x87 error"}, {"#AC", "alignment check"}, {"#MC", "machine check"},
    {"#XM", "SIMD error"}, {"#VE", "virtualization"}, {"#CP", "control protection"}, {"(22)", "reserved"},
    {"(23)", "reserved"}, {"(24)", "reserved"}, {"(25)", "reserved"}, {"(26)", "reserved"}, {"(27)", "reserved"},
    {"#HV", "hypervisor injection"}, {"#VC", "VMM communication"}, {"#SX", "security"}, {"(31)", "reserved"}};

// Null for vectors >= 32 (external interrupts).
inline constexpr const ExceptionName* exception_name(uint64_t vector) {
    return vector < kExceptionVectorCount ? &kExceptionNames[vector] : nullptr;
}

}  // namespace hvkvm::abi
