// The hostile cases, chosen by `case=NAME` on the kernel command line. Each group file defines its
// cases in one table; tests/hostile/CMakeLists.txt says how the VMM must survive each one.
#pragma once

#include <stddef.h>

namespace hostile {

struct Case {
    const char* name;
    void (*run)();  // returns to pass or fail on its checks; or crashes, hangs or exits on purpose
};

struct CaseGroup {
    const Case* cases;
    size_t count;
};

template <size_t N>
constexpr CaseGroup group(const Case (&cases)[N]) {
    return {cases, N};
}

extern const CaseGroup kPioCases, kMemoryCases, kHypercallCases, kReportCases, kCrashCases, kFloodCases, kSmpCases, kIdeCases;

const Case* find_case(const char* name);

}  // namespace hostile
