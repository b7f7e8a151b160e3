// Kernel console: printf-style output to the serial port, one whole line per call at most
// interleaving with other CPUs (a lock serialises writers).
#pragma once

#include <stdarg.h>
#include <stddef.h>

namespace hvkvm::guest {

void console_init();
// Switches the console to hypervisor messages if the hypervisor interface is available.
void console_use_hypervisor_messages();

__attribute__((format(printf, 1, 2))) void kprint(const char* format, ...);
void kprint_v(const char* format, va_list arguments);
void console_write(const char* text, size_t length);

// Gets every console write too, with interrupts disabled and after the console's lock is
// released (so it may print nothing itself); nullptr: none. How the guest log mirrors the
// console (command line guest_log=console).
using ConsoleLineObserver = void (*)(const char* text, size_t length);
void console_set_line_observer(ConsoleLineObserver observer);

// For the crash path: write without taking the lock (the lock holder may be the crashed code).
__attribute__((format(printf, 1, 2))) void kprint_unlocked(const char* format, ...);

}  // namespace hvkvm::guest
