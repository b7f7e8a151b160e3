#pragma once

namespace hvkvm::guest {

// Prints the message, records it for the VMM, and ends the run with the crash status.
[[noreturn]] __attribute__((format(printf, 1, 2))) void panic(const char* format, ...);

}  // namespace hvkvm::guest
