// The register frame every interrupt and exception handler sees: built by interrupt_stubs.S on
// top of the CPU's (or PVM's) native 64-bit frame. Keep in sync with the push order there.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace hvkvm::guest::x86 {

struct TrapFrame {
    uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
    uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
    uint64_t vector;
    uint64_t error_code;  // 0 for vectors where the CPU pushes none
    // Pushed by the CPU:
    uint64_t rip, cs, rflags, rsp, ss;
};
static_assert(offsetof(TrapFrame, rax) == 14 * 8);
static_assert(offsetof(TrapFrame, vector) == 15 * 8);
static_assert(offsetof(TrapFrame, rip) == 17 * 8);
static_assert(sizeof(TrapFrame) == 22 * 8);

inline constexpr uint32_t kFirstExternalVector = 32;


}  // namespace hvkvm::guest::x86
