#include "kernel/test/ktest.h"

#include <stdarg.h>

#include "arch/x86_64/cpu.h"
#include "kernel/console.h"
#include "kernel/sched/thread.h"
#include "kernel/sched/mutex.h"
#include "kernel/host_interface.h"
#include "arch/x86_64/time.h"
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

bool matches_any(const char* globs, uint32_t globs_length, const char* text) {
    uint32_t start = 0;
    for (uint32_t i = 0; i <= globs_length; ++i) {
        if (i < globs_length && globs[i] != ',') continue;
        if (glob_match(globs + start, i - start, text)) return true;
        start = i + 1;
    }
    return false;
}

namespace {

constexpr uint64_t kTestTimeLimitNs = 120'000'000'000ull;

struct TestRun {
    const TestCase* test;
    Context context;
    Event finished;
};

void run_test_thread(void* argument) {
    auto* run = static_cast<TestRun*>(argument);
    run->test->function(run->context);
    run->finished.set();
}

enum class Verdict { kPassed, kFailed, kSkipped };

// Runs one test in a thread of its own (so that it may block, sleep and be preempted), with a
// time limit: a test that hangs ends the whole run, since a kernel thread cannot be killed.
Verdict run_one(const TestCase& test, const char** skip_reason) {
    TestRun run{&test, {}, Event(Event::Reset::kManual)};
    sched::ThreadOptions options;
    options.name = test.name;
    options.ideal_cpu = 0;
    options.stack_bytes = 48 * 1024;
    sched::Thread* thread = sched::create_thread(run_test_thread, &run, options);
    if (!thread) {
        kprint("FAIL %s: cannot create its thread\n", test.name);
        return Verdict::kFailed;
    }
    if (!run.finished.wait_until(time::now_ns() + kTestTimeLimitNs)) {
        kprint("FAIL %s: still running after %lu s; stopping the test run\n", test.name, kTestTimeLimitNs / 1000000000);
        exit_to_vmm(abi::GuestExitCode::kFailure);
    }
    sched::join(thread);
    if (run.context.failed()) return Verdict::kFailed;  // a failure before the skip still counts
    *skip_reason = run.context.skip_reason();
    return *skip_reason ? Verdict::kSkipped : Verdict::kPassed;
}

}  // namespace

bool run_matching(const char* glob, uint32_t glob_length) {  // glob: comma-separated globs
    uint32_t passed = 0, failed = 0, skipped = 0;
    const uint64_t suite_start = time::now_ns();
    for (const TestCase* test = __ktests_start; test != __ktests_end; ++test) {
        if (!matches_any(glob, glob_length, test->name)) continue;
        const uint64_t start = time::now_ns();
        const char* skip_reason = nullptr;
        const Verdict verdict = run_one(*test, &skip_reason);
        const uint64_t elapsed_us = (time::now_ns() - start) / 1000;
        switch (verdict) {
        case Verdict::kPassed:
            kprint("ok   %s (%lu.%03lu ms)\n", test->name, elapsed_us / 1000, elapsed_us % 1000);
            ++passed;
            break;
        case Verdict::kFailed:
            kprint("FAIL %s (%lu.%03lu ms)\n", test->name, elapsed_us / 1000, elapsed_us % 1000);
            ++failed;
            break;
        case Verdict::kSkipped:
            kprint("skip %s: %s\n", test->name, skip_reason);
            ++skipped;
            break;
        }
    }
    if (passed + failed + skipped == 0) {
        kprint("no test matches \"%.*s\"\n", static_cast<int>(glob_length), glob);
        return false;
    }
    const uint64_t total_ms = (time::now_ns() - suite_start) / 1000000;
    kprint("%u passed, %u failed, %u skipped (%lu ms)\n", passed, failed, skipped, total_ms);
    return failed == 0;
}

}  // namespace hvkvm::guest::ktest
