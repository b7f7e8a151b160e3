// Tests of the test framework itself and of basic kernel services.
#include "kernel/cmdline.h"
#include "kernel/test/ktest.h"
#include "arch/x86_64/time.h"
#include "lib/string.h"

namespace hvkvm::guest {
namespace {

bool matches(const char* pattern, const char* text) {
    return ktest::glob_match(pattern, static_cast<uint32_t>(strlen(pattern)), text);
}

}  // namespace

KTEST(ktest, glob_matching) {
    KEXPECT(matches("*", "sched.fairness"));
    KEXPECT(matches("sched.*", "sched.fairness"));
    KEXPECT(matches("*.fair*", "sched.fairness"));
    KEXPECT(matches("s?hed.fairness", "sched.fairness"));
    KEXPECT(matches("sched.fairness", "sched.fairness"));
    KEXPECT(!matches("sched.", "sched.fairness"));
    KEXPECT(!matches("mm.*", "sched.fairness"));
    KEXPECT(!matches("sched.fairness?", "sched.fairness"));
    KEXPECT(matches("*a*b*c", "xaybzc"));
    KEXPECT(!matches("*a*b*c", "xaybz"));
    const char* list = "mm.*,sched.yield*";
    KEXPECT(ktest::matches_any(list, 17, "sched.yield_lets_the_other_thread_run"));
    KEXPECT(ktest::matches_any(list, 17, "mm.heap"));
    KEXPECT(!ktest::matches_any(list, 17, "sched.sleep"));
}

KTEST(time, monotonic_and_calibrated) {
    const uint64_t first = time::now_ns();
    time::spin_for_ns(200000);
    const uint64_t second = time::now_ns();
    KEXPECT(second >= first + 200000);
    KEXPECT(second < first + 50000000);  // generous: vCPUs can be descheduled on an overcommitted host
    const uint64_t round_trip = time::tsc_to_ns(time::ns_to_tsc(1000000000));
    KEXPECT(round_trip > 1000000000 - 2000 && round_trip < 1000000000 + 2000);  // 32.32 fixed point
}

}  // namespace hvkvm::guest
