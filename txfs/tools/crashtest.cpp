// txfs-crashtest: crash-consistency checking at scale. Runs every workload of up to --length
// standard operations (exhaustive), then random long workloads until --states crash states have
// been checked, printing progress and a summary. Exit status: 0 no violation, 1 violations,
// 2 bad arguments.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <string>

#include "host/workload.h"

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: txfs-crashtest [--states N] [--length L] [--random-length R] [--seed S]\n"
                 "  --states N         crash states to check in total (default 1000000)\n"
                 "  --length L         exhaustive workloads of 1..L standard operations first (default 2: 420\n"
                 "                     workloads; 3 adds all 8,000 three-operation workloads)\n"
                 "  --random-length R  operations per random workload after that (default 30)\n"
                 "  --seed S           random seed (default 1)\n");
}

bool parse_number(const char* text, uint64_t* out) {
    char* end = nullptr;
    *out = std::strtoull(text, &end, 10);
    return text[0] != '\0' && end && *end == '\0';
}

}  // namespace

int main(int argc, char** argv) {
    uint64_t states = 1000000, length = 2, random_length = 30, seed = 1;
    for (int i = 1; i < argc; ++i) {
        uint64_t* target = nullptr;
        if (!std::strcmp(argv[i], "--states")) target = &states;
        else if (!std::strcmp(argv[i], "--length")) target = &length;
        else if (!std::strcmp(argv[i], "--random-length")) target = &random_length;
        else if (!std::strcmp(argv[i], "--seed")) target = &seed;
        if (!target || i + 1 >= argc || !parse_number(argv[++i], target)) {
            usage();
            return 2;
        }
    }
    using Clock = std::chrono::steady_clock;
    const auto start = Clock::now();
    txfs::host::CrashGeometry geometry;
    txfs::host::CrashCheckOptions options;
    options.recovery_crash_every = 10;  // every 10th state also has its recovery crashed, every way
    txfs::host::CrashReport total;
    auto progress = [&](const txfs::host::CrashReport& part) {
        const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
        std::printf("  %llu workloads, %llu states, %llu violations, %.0f s (%.0f states/s)\n",
                    static_cast<unsigned long long>(total.workloads + part.workloads),
                    static_cast<unsigned long long>(total.states + part.states),
                    static_cast<unsigned long long>(total.violations + part.violations), seconds,
                    (total.states + part.states) / (seconds > 0 ? seconds : 1));
        std::fflush(stdout);
    };
    for (uint64_t l = 1; l <= length && total.states < states; ++l) {
        std::printf("exhaustive: every workload of %llu operation(s)\n", static_cast<unsigned long long>(l));
        total.merge(txfs::host::check_all_workloads(l, 1, geometry, options, progress));
    }
    if (total.states < states) {
        std::printf("random: workloads of %llu operations until %llu states\n", static_cast<unsigned long long>(random_length),
                    static_cast<unsigned long long>(states));
        total.merge(txfs::host::check_random_workloads(states - total.states, random_length, seed, geometry, progress));
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    for (const auto& example : total.examples) std::printf("VIOLATION: %s\n", example.c_str());
    std::printf("summary: %llu workloads, %llu crash states (+%llu crash states during their recovery), %llu violations in %.1f s\n",
                static_cast<unsigned long long>(total.workloads), static_cast<unsigned long long>(total.states),
                static_cast<unsigned long long>(total.recovery_states), static_cast<unsigned long long>(total.violations), seconds);
    return total.violations == 0 ? 0 : 1;
}
