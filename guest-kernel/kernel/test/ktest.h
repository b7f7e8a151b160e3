// In-guest tests. A test is a function registered at link time:
//
//     KTEST(sched, preemption) {
//         ...
//         KEXPECT(condition);                 // records a failure, carries on
//         KEXPECT_EQ(actual, expected);       // same, printing both values
//         KASSERT(pointer != nullptr);        // records a failure and ends the test
//         KSKIP_UNLESS(smp::online_count() >= 2, "needs 2 vCPUs");  // ends it as skipped
//     }
//
// The kernel command line `test=GLOB[,GLOB...]` (globs over "suite.name", `*` and `?`) runs the matching tests
// one after another, each in its own kernel thread, prints one line per test and a final
// "N passed, N failed, N skipped" line, and ends the run with status 0 only if none failed. A
// test that cannot run in this configuration skips with its reason, never passes silently.
#pragma once

#include <stdint.h>

namespace hvkvm::guest::ktest {

class Context {
public:
    __attribute__((format(printf, 4, 5))) void fail(const char* file, int line, const char* format, ...);
    void skip(const char* reason) { skip_reason_ = reason; }
    bool failed() const { return failures_ != 0; }
    uint32_t failures() const { return failures_; }
    const char* skip_reason() const { return skip_reason_; }  // null unless skipped

private:
    uint32_t failures_ = 0;
    const char* skip_reason_ = nullptr;
};

struct TestCase {
    const char* name;  // "suite.name"
    void (*function)(Context&);
};

// Runs every test whose name matches one of the comma-separated `globs`; returns true if at
// least one ran and none failed.
bool run_matching(const char* globs, uint32_t globs_length);

// True if `text` matches one of the comma-separated globs.
bool matches_any(const char* globs, uint32_t globs_length, const char* text);

bool glob_match(const char* pattern, uint32_t pattern_length, const char* text);

}  // namespace hvkvm::guest::ktest

#define KTEST(suite, name)                                                                                \
    static void ktest_##suite##_##name(::hvkvm::guest::ktest::Context&);                                  \
    [[gnu::used, gnu::section(".ktests"), gnu::aligned(8)]] static const ::hvkvm::guest::ktest::TestCase  \
        ktest_case_##suite##_##name = {#suite "." #name, ktest_##suite##_##name};                        \
    static void ktest_##suite##_##name([[maybe_unused]] ::hvkvm::guest::ktest::Context& ktest_context)

#define KEXPECT(condition)                                                                 \
    do {                                                                                   \
        if (!(condition)) ktest_context.fail(__FILE_NAME__, __LINE__, "expected %s", #condition); \
    } while (0)

#define KEXPECT_EQ(actual, expected)                                                                   \
    do {                                                                                               \
        const auto ktest_actual = (actual);                                                            \
        const auto ktest_expected = (expected);                                                        \
        if (!(ktest_actual == ktest_expected))                                                         \
            ktest_context.fail(__FILE_NAME__, __LINE__, "expected %s == %s (got %lld, expected %lld)",      \
                               #actual, #expected, static_cast<long long>(ktest_actual),               \
                               static_cast<long long>(ktest_expected));                                \
    } while (0)

// Ends the test as skipped (with `reason`, a string literal) unless `condition` holds.
#define KSKIP_UNLESS(condition, reason)   \
    do {                                  \
        if (!(condition)) {               \
            ktest_context.skip(reason);   \
            return;                       \
        }                                 \
    } while (0)

#define KASSERT(condition)                                                                     \
    do {                                                                                       \
        if (!(condition)) {                                                                    \
            ktest_context.fail(__FILE_NAME__, __LINE__, "assertion %s failed; test stopped", #condition); \
            return;                                                                            \
        }                                                                                      \
    } while (0)
