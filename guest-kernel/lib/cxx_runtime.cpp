// The C++ ABI hooks a freestanding kernel without exceptions needs (operator new and delete live
// with the heap, in mm/heap.cpp).
#include "kernel/panic.h"

extern "C" void __cxa_pure_virtual() { hvkvm::guest::panic("pure virtual function called"); }
