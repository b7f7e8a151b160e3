// The C++ ABI hooks a freestanding kernel without exceptions needs (operator new and delete live
// with the heap, in mm/heap.cpp).
#include <new>

#include "kernel/panic.h"

// Normally in the C++ runtime library, which the kernel does not link.
const std::nothrow_t std::nothrow{};

extern "C" void __cxa_pure_virtual() { hvkvm::guest::panic("pure virtual function called"); }
