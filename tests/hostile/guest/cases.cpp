#include "cases.h"

#include "guest.h"

namespace hostile {

const Case* find_case(const char* name) {
    const CaseGroup* const groups[] = {&kPioCases,  &kMemoryCases, &kHypercallCases, &kReportCases,
                                       &kCrashCases, &kFloodCases,  &kSmpCases,      &kIdeCases};
    for (const CaseGroup* group : groups)
        for (size_t i = 0; i < group->count; ++i)
            if (strings_equal(group->cases[i].name, name)) return &group->cases[i];
    return nullptr;
}

}  // namespace hostile
