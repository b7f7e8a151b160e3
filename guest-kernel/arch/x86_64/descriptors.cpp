#include "arch/x86_64/descriptors.h"

#include "lib/string.h"

namespace hvkvm::guest::x86 {
namespace {

struct __attribute__((packed)) DescriptorPointer {
    uint16_t limit;
    uint64_t base;
};

struct IdtGate {
    uint64_t low, high;
};

// One IDT for all CPUs: every vector enters the common stub, which passes the vector number on.
alignas(4096) IdtGate idt[256];

constexpr uint64_t segment(uint64_t access, uint64_t flags) {
    return 0xffff | (access << 40) | (0xfull << 48) | (flags << 52);
}
constexpr uint64_t kAccessPresent = 0x80, kAccessCode = 0x1a, kAccessData = 0x12, kAccessDpl3 = 0x60;
constexpr uint64_t kFlagLong = 0x2, kFlagSize32 = 0x4, kFlagGranularity = 0x8;

}  // namespace

extern "C" char interrupt_vector_stubs[];      // interrupt_stubs.S: 256 entry stubs
extern "C" const uint32_t interrupt_stub_size;

void build_gdt_and_tss(CpuDescriptors& d) {
    memset(d.gdt, 0, sizeof d.gdt);
    d.gdt[kKernelCode32Selector / 8] = segment(kAccessPresent | kAccessCode, kFlagSize32 | kFlagGranularity);
    d.gdt[kKernelCodeSelector / 8] = segment(kAccessPresent | kAccessCode, kFlagLong | kFlagGranularity);
    d.gdt[kKernelDataSelector / 8] = segment(kAccessPresent | kAccessData, kFlagSize32 | kFlagGranularity);
    d.gdt[kUserCode32Selector / 8] = segment(kAccessPresent | kAccessDpl3 | kAccessCode, kFlagSize32 | kFlagGranularity);
    d.gdt[kUserDataSelector / 8] = segment(kAccessPresent | kAccessDpl3 | kAccessData, kFlagSize32 | kFlagGranularity);
    d.gdt[kUserCodeSelector / 8] = segment(kAccessPresent | kAccessDpl3 | kAccessCode, kFlagLong | kFlagGranularity);

    memset(&d.tss, 0, sizeof d.tss);
    d.tss.iomap_base = sizeof(Tss);  // no I/O permission bitmap
    d.tss.ist[kIstDoubleFault - 1] = reinterpret_cast<uint64_t>(d.ist_stacks[0] + kIstStackSize);
    d.tss.ist[kIstNmi - 1] = reinterpret_cast<uint64_t>(d.ist_stacks[1] + kIstStackSize);
    d.tss.ist[kIstMachineCheck - 1] = reinterpret_cast<uint64_t>(d.ist_stacks[2] + kIstStackSize);
    const auto base = reinterpret_cast<uint64_t>(&d.tss);
    const uint64_t limit = sizeof(Tss) - 1;
    d.gdt[kTssSelector / 8] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
                              ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
    d.gdt[kTssSelector / 8 + 1] = base >> 32;
}

void load_gdt_and_tss(CpuDescriptors& d) {
    const DescriptorPointer pointer{sizeof d.gdt - 1, reinterpret_cast<uint64_t>(d.gdt)};
    __asm__ volatile(
        "lgdt %0\n"
        "pushq %1\n"
        "leaq 1f(%%rip), %%rax\n"
        "pushq %%rax\n"
        "lretq\n"
        "1:\n"
        "mov %2, %%ds\n"
        "mov %2, %%es\n"
        "mov %2, %%ss\n"
        "ltr %w3\n"
        :
        : "m"(pointer), "i"(kKernelCodeSelector), "r"(uint32_t{kKernelDataSelector}), "r"(uint32_t{kTssSelector})
        : "rax", "memory");
}

void load_idt() {
    const DescriptorPointer pointer{sizeof idt - 1, reinterpret_cast<uint64_t>(idt)};
    __asm__ volatile("lidt %0" : : "m"(pointer));
}

void fill_idt() {
    for (uint32_t vector = 0; vector < 256; ++vector) {
        const auto handler = reinterpret_cast<uint64_t>(interrupt_vector_stubs + vector * interrupt_stub_size);
        uint64_t ist = 0;
        if (vector == 8) ist = kIstDoubleFault;
        else if (vector == 2) ist = kIstNmi;
        else if (vector == 18) ist = kIstMachineCheck;
        idt[vector].low = (handler & 0xffff) | (uint64_t{kKernelCodeSelector} << 16) | (ist << 32) |
                          (0x8eull << 40) /* present, DPL0, 64-bit interrupt gate */ | ((handler >> 16 & 0xffff) << 48);
        idt[vector].high = handler >> 32;
    }
}

}  // namespace hvkvm::guest::x86
