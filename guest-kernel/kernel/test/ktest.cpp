#include "kernel/test/ktest.h"

#include <stdarg.h>

#include "arch/x86_64/cpu.h"
#include "kernel/console.h"
#include "kernel/time.h"
#include "lib/format.h"

extern "C" const hvkvm::guest::ktest::TestCase __ktests_start[], __ktests_end[];

namespace hvkvm::guest::ktest {

void Context::fail(const char* file, int line, const char* format, ...) {
    ++failures_;
    char message[256];
    va_list arguments;
    va_start(arguments, format);
    format_v(message, sizeof message, format, arguments);
    va_end(arguments);
    kprint("    %s:%d: %s\n", file, line, message);
}

bool glob_match(const char* pattern, uint32_t pattern_length, const char* text) {
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    uint32_t p = 0;
    const char* t = text;
    uint32_t star_p = UINT32_MAX;
    const char* star_t = nullptr;
    while (*t) {
        if (p < pattern_length && (pattern[p] == '?' || pattern[p] == *t)) {
            ++p, ++t;
        } else if (p < pattern_length && pattern[p] == '*') {
            star_p = p++;
            star_t = t;
        } else if (star_p != UINT32_MAX) {
            p = star_p + 1;
            t = ++star_t;
        } else {
            return false;
        }
    }
    while (p < pattern_length && pattern[p] == '*') ++p;
    return p == pattern_length;
}

bool run_matching(const char* glob, uint32_t glob_length) {
    uint32_t passed = 0, failed = 0;
    const uint64_t suite_start = time::now_ns();
    for (const TestCase* test = __ktests_start; test != __ktests_end; ++test) {
        if (!glob_match(glob, glob_length, test->name)) continue;
        Context context;
        const uint64_t start = time::now_ns();
        test->function(context);
        const uint64_t elapsed_us = (time::now_ns() - start) / 1000;
        kprint("%s %s (%lu.%03lu ms)\n", context.failed() ? "FAIL" : "ok  ", test->name, elapsed_us / 1000,
               elapsed_us % 1000);
        ++(context.failed() ? failed : passed);
    }
    if (passed + failed == 0) {
        kprint("no test matches \"%.*s\"\n", static_cast<int>(glob_length), glob);
        return false;
    }
    const uint64_t total_ms = (time::now_ns() - suite_start) / 1000000;
    kprint("%u passed, %u failed (%lu ms)\n", passed, failed, total_ms);
    return failed == 0;
}

}  // namespace hvkvm::guest::ktest
