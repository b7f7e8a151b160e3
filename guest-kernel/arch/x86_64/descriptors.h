// GDT, TSS and IDT. The GDT follows Linux's x86-64 selector layout because PVM hosts present the
// guest's kernel code as selector 0x33 (Linux's __USER_CS) in interrupt frames and emulate iretq
// against it; using the same layout keeps every selector PVM may show us valid in our GDT.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::x86 {

inline constexpr uint16_t kKernelCode32Selector = 0x08;
inline constexpr uint16_t kKernelCodeSelector = 0x10;
inline constexpr uint16_t kKernelDataSelector = 0x18;
inline constexpr uint16_t kUserCode32Selector = 0x23;
inline constexpr uint16_t kUserDataSelector = 0x2b;
inline constexpr uint16_t kUserCodeSelector = 0x33;
inline constexpr uint16_t kTssSelector = 0x40;
inline constexpr uint32_t kGdtEntries = 10;  // 0x40 TSS takes two slots

// Interrupt stack table slots for exceptions that must not run on a possibly broken stack.
inline constexpr uint8_t kIstDoubleFault = 1;
inline constexpr uint8_t kIstNmi = 2;
inline constexpr uint8_t kIstMachineCheck = 3;
inline constexpr uint32_t kIstStackSize = 8192;

struct __attribute__((packed)) Tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

// Per-CPU descriptor state. The GDT is per CPU because each CPU's TSS descriptor is marked busy
// by `ltr`.
struct alignas(16) CpuDescriptors {
    uint64_t gdt[kGdtEntries];
    Tss tss;
    alignas(16) uint8_t ist_stacks[3][kIstStackSize];
};

// Fills a CPU's GDT and TSS. The boot CPU does this for the others at native speed, so that their
// (emulated, on PVM hosts) start-up only has to load them.
void build_gdt_and_tss(CpuDescriptors& descriptors);
// Loads them on this CPU: lgdt, segment reloads, ltr.
void load_gdt_and_tss(CpuDescriptors& descriptors);

// Loads the shared IDT register. The table's gates are written by fill_idt(); the two steps are
// split so that the emulated pre-PVM prologue only does the cheap `lidt`.
void load_idt();
void fill_idt();

}  // namespace hvkvm::guest::x86
