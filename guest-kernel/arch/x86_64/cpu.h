// Thin wrappers over x86 instructions. Each is one instruction; whether it is cheap depends on
// the platform (on PVM hosts rdmsr/wrmsr, port I/O and cpuid trap to the host).
#pragma once

#include <stdint.h>

namespace hvkvm::guest::x86 {

// Port accesses are compiler barriers ("memory"): a port write often tells a device to read what
// was just stored in RAM (a DMA descriptor table), and a read that it has written there.
inline void outb(uint16_t port, uint8_t value) { __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory"); }
inline void outl(uint16_t port, uint32_t value) { __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory"); }
inline uint32_t inl(uint16_t port) {
    uint32_t value;
    __asm__ volatile("inl %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}
inline uint8_t inb(uint16_t port) {
    uint8_t value;
    __asm__ volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

// String port I/O of 32-bit elements (`rep insl` / `rep outsl`): a device's data port.
inline void insl(uint16_t port, void* destination, uint64_t count) {
    __asm__ volatile("rep insl" : "+D"(destination), "+c"(count) : "d"(port) : "memory");
}
inline void outsl(uint16_t port, const void* source, uint64_t count) {
    __asm__ volatile("rep outsl" : "+S"(source), "+c"(count) : "d"(port) : "memory");
}

inline uint64_t rdtsc() {
    uint32_t low, high;
    __asm__ volatile("rdtsc" : "=a"(low), "=d"(high));
    return (uint64_t{high} << 32) | low;
}

inline uint64_t rdmsr(uint32_t msr) {
    uint32_t low, high;
    __asm__ volatile("rdmsr" : "=a"(low), "=d"(high) : "c"(msr));
    return (uint64_t{high} << 32) | low;
}

inline void wrmsr(uint32_t msr, uint64_t value) {
    __asm__ volatile("wrmsr" : : "c"(msr), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32))
                     : "memory");
}

struct CpuidResult {
    uint32_t eax, ebx, ecx, edx;
};
inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0) {
    CpuidResult r;
    __asm__ volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

inline uint64_t read_cr2() {
    uint64_t value;
    __asm__ volatile("mov %%cr2, %0" : "=r"(value));
    return value;
}

inline uint64_t read_cr3() {
    uint64_t value;
    __asm__ volatile("mov %%cr3, %0" : "=r"(value));
    return value;
}

inline void pause() { __asm__ volatile("pause"); }

// Removes one page from this CPU's TLB (mm/tlb.h flushes every CPU's).
inline void invalidate_page(uint64_t virtual_address) {
    __asm__ volatile("invlpg (%0)" : : "r"(virtual_address) : "memory");
}

[[noreturn]] inline void halt_forever() {
    for (;;) __asm__ volatile("hlt");
}

inline constexpr uint32_t kMsrGsBase = 0xc0000101;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;

}  // namespace hvkvm::guest::x86
