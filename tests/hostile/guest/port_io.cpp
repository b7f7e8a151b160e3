#include "port_io.h"

namespace hostile {
namespace {

// One asm statement per instruction form: the operand size and rep prefix are part of the opcode.
#define STRING_IO(instruction, pointer_register)                                                         \
    __asm__ volatile("1: " instruction "\n2:\n" HOSTILE_FIXUP                                             \
                     : "+" pointer_register(pointer), "+c"(count)                                         \
                     : "d"(port)                                                                          \
                     : "memory")

void set_direction(bool backwards) {
    if (backwards) __asm__ volatile("std" ::: "memory");
}
void clear_direction() { __asm__ volatile("cld" ::: "memory"); }

}  // namespace

StringIoResult outs(uint16_t port, uint32_t size, const void* source, uint64_t count, Repeat repeat, bool backwards) {
    auto pointer = reinterpret_cast<uint64_t>(source);
    begin_probe();
    set_direction(backwards);
    if (repeat == Repeat::kRep) {
        if (size == 1) STRING_IO("rep outsb", "S");
        else if (size == 2) STRING_IO("rep outsw", "S");
        else STRING_IO("rep outsl", "S");
    } else {
        if (size == 1) STRING_IO("outsb", "S");
        else if (size == 2) STRING_IO("outsw", "S");
        else STRING_IO("outsl", "S");
    }
    clear_direction();
    return {count, pointer, end_probe()};
}

StringIoResult ins(uint16_t port, uint32_t size, void* destination, uint64_t count, Repeat repeat, bool backwards) {
    auto pointer = reinterpret_cast<uint64_t>(destination);
    begin_probe();
    set_direction(backwards);
    if (repeat == Repeat::kRep) {
        if (size == 1) STRING_IO("rep insb", "D");
        else if (size == 2) STRING_IO("rep insw", "D");
        else STRING_IO("rep insl", "D");
    } else {
        if (size == 1) STRING_IO("insb", "D");
        else if (size == 2) STRING_IO("insw", "D");
        else STRING_IO("insl", "D");
    }
    clear_direction();
    return {count, pointer, end_probe()};
}

PlainOutResult out_keeping_registers(uint16_t port, uint32_t size, uint64_t value, uint64_t rcx) {
    uint64_t rax = value;
    if (size == 1) __asm__ volatile("outb %%al, %%dx" : "+a"(rax), "+c"(rcx) : "d"(port) : "memory");
    else if (size == 2) __asm__ volatile("outw %%ax, %%dx" : "+a"(rax), "+c"(rcx) : "d"(port) : "memory");
    else __asm__ volatile("outl %%eax, %%dx" : "+a"(rax), "+c"(rcx) : "d"(port) : "memory");
    return {rax, rcx};
}

uint32_t in_any(uint16_t port, uint32_t size) {
    uint32_t value = 0;
    if (size == 1) __asm__ volatile("inb %%dx, %%al" : "+a"(value) : "d"(port) : "memory");
    else if (size == 2) __asm__ volatile("inw %%dx, %%ax" : "+a"(value) : "d"(port) : "memory");
    else __asm__ volatile("inl %%dx, %%eax" : "=a"(value) : "d"(port) : "memory");
    return value;
}

void out_any(uint16_t port, uint32_t size, uint32_t value) {
    if (size == 1) __asm__ volatile("outb %%al, %%dx" : : "a"(value), "d"(port) : "memory");
    else if (size == 2) __asm__ volatile("outw %%ax, %%dx" : : "a"(value), "d"(port) : "memory");
    else __asm__ volatile("outl %%eax, %%dx" : : "a"(value), "d"(port) : "memory");
}

}  // namespace hostile
