// The few C++ ABI hooks a freestanding kernel without exceptions needs.
#include <stddef.h>

#include "kernel/panic.h"

extern "C" void __cxa_pure_virtual() { hvkvm::guest::panic("pure virtual function called"); }

// Deleting destructors of classes with virtual destructors reference these even when nothing is
// ever deleted. Until the kernel heap exists, deleting is a bug.
void operator delete(void*) noexcept { hvkvm::guest::panic("operator delete without a heap"); }
void operator delete(void*, size_t) noexcept { hvkvm::guest::panic("operator delete without a heap"); }
