// Port I/O with every shape a guest can give it: sizes 1, 2, 4; single or string; with or without
// rep; forwards or backwards. Each returns the registers the instruction left behind, so that a
// case can check the VMM completed it exactly once.
#pragma once

#include <stdint.h>

#include "guest.h"

namespace hostile {

struct StringIoResult {
    uint64_t remaining;  // RCX afterwards
    uint64_t pointer;    // RSI (outs) or RDI (ins) afterwards
    uint32_t fault;      // kNoFault, or the vector that stopped it part-way
};

enum class Repeat { kNone, kRep };

StringIoResult outs(uint16_t port, uint32_t size, const void* source, uint64_t count, Repeat repeat = Repeat::kRep,
                    bool backwards = false);
StringIoResult ins(uint16_t port, uint32_t size, void* destination, uint64_t count, Repeat repeat = Repeat::kRep,
                   bool backwards = false);

// A plain OUT of `size` bytes; returns RAX and RCX as the guest sees them afterwards (an OUT must
// change neither).
struct PlainOutResult {
    uint64_t rax;
    uint64_t rcx;
};
PlainOutResult out_keeping_registers(uint16_t port, uint32_t size, uint64_t value, uint64_t rcx);
uint32_t in_any(uint16_t port, uint32_t size);
void out_any(uint16_t port, uint32_t size, uint32_t value);

}  // namespace hostile
