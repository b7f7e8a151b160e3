// printf-style formatting into a bounded buffer, for the freestanding kernel (and unit-tested on
// the host against the C library). Supports %d %i %u %x %X %o %p %s %c %%, the flags '-' '0' '+'
// ' ' '#', a width and precision (also '*'), and the length modifiers hh h l ll z j t.
#pragma once

#include <stdarg.h>
#include <stddef.h>

namespace hvkvm::guest {

// Writes at most `capacity - 1` characters and a NUL (if capacity > 0). Returns the length the
// full output would have had, like vsnprintf.
size_t format_v(char* buffer, size_t capacity, const char* format, va_list arguments);

__attribute__((format(printf, 3, 4)))
size_t format(char* buffer, size_t capacity, const char* format, ...);

}  // namespace hvkvm::guest
