#include "lib/string.h"

#include <stdint.h>

// GCC recognises these loops and would turn them back into calls to themselves; forbid that.
#define NO_BUILTIN __attribute__((optimize("no-tree-loop-distribute-patterns")))

extern "C" {

NO_BUILTIN void* memcpy(void* destination, const void* source, size_t count) {
    void* result = destination;
    __asm__ volatile("rep movsb" : "+D"(destination), "+S"(source), "+c"(count) : : "memory");
    return result;
}

NO_BUILTIN void* memmove(void* destination, const void* source, size_t count) {
    auto* d = static_cast<uint8_t*>(destination);
    const auto* s = static_cast<const uint8_t*>(source);
    if (d <= s || d >= s + count) return memcpy(destination, source, count);
    while (count--) d[count] = s[count];
    return destination;
}

NO_BUILTIN void* memset(void* destination, int value, size_t count) {
    void* result = destination;
    __asm__ volatile("rep stosb" : "+D"(destination), "+c"(count) : "a"(value) : "memory");
    return result;
}

NO_BUILTIN int memcmp(const void* a, const void* b, size_t count) {
    const auto* x = static_cast<const uint8_t*>(a);
    const auto* y = static_cast<const uint8_t*>(b);
    for (size_t i = 0; i < count; ++i)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

NO_BUILTIN size_t strlen(const char* text) {
    size_t length = 0;
    while (text[length]) ++length;
    return length;
}

NO_BUILTIN int strcmp(const char* a, const char* b) {
    while (*a && *a == *b) ++a, ++b;
    return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
}

NO_BUILTIN int strncmp(const char* a, const char* b, size_t count) {
    for (; count; --count, ++a, ++b) {
        if (*a != *b || !*a) return static_cast<unsigned char>(*a) - static_cast<unsigned char>(*b);
    }
    return 0;
}

}  // extern "C"
