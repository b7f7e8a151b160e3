// Crash consistency in CI: every workload of one and two standard operations, every crash state
// of each (flush prefixes, subsets and torn writes of the unflushed writes), then random states
// of long random workloads, to at least 10,000 states. Budget: about 15 s on one core.
// `build/bin/txfs-crashtest --states 1000000` runs the long version.
#include <catch2/catch.hpp>

#include "host/workload.h"

using namespace txfs::host;

namespace {

void require_clean(const CrashReport& report) {
    for (const auto& example : report.examples) UNSCOPED_INFO(example);
    REQUIRE(report.violations == 0);
}

}  // namespace

TEST_CASE("Crash states: exhaustive workloads of up to 2 operations - then random long workloads") {
    CrashGeometry geometry;
    CrashCheckOptions options;
    options.recovery_crash_every = 25;
    CrashReport total;
    for (size_t length = 1; length <= 2; ++length) total.merge(check_all_workloads(length, 1, geometry, options, nullptr));
    total.merge(check_random_workloads(3000, 30, 42, geometry, nullptr));
    WARN("crash states checked: " << total.states << " from " << total.workloads << " workloads, plus " << total.recovery_states
                                   << " states of crashed recoveries");
    REQUIRE(total.states >= 10000);
    REQUIRE(total.recovery_states > 0);
    require_clean(total);
}

TEST_CASE("Crash states: a sample of 3-operation workloads") {
    CrashGeometry geometry;
    CrashCheckOptions options;
    // Every 97th of the 8,000 three-operation workloads (a prime stride visits every position).
    const CrashReport report = check_all_workloads(3, 97, geometry, options, nullptr);
    REQUIRE(report.workloads > 80);
    require_clean(report);
}

TEST_CASE("The crash checker catches a broken protocol") {
    // A workload whose snapshots are deliberately wrong: every crash state must then be flagged.
    CrashGeometry geometry;
    WorkloadRun run = run_workload({Op{OpKind::kWrite, 0, 5000}}, geometry);
    REQUIRE(run.failure.empty());
    REQUIRE(run.snapshots.size() == 2);
    for (auto& snapshot : run.snapshots) snapshot.state = "F /nonexistent 0 00000000\n";
    CrashStateOptions states;
    uint64_t flagged = 0;
    const uint64_t visited = enumerate_crash_states(*run.device, states, [&](const std::vector<uint8_t>& image, size_t epoch, const std::string&) {
        flagged += !check_crash_state(run, image, epoch, true).empty();
        return true;
    });
    REQUIRE(visited > 10);
    REQUIRE(flagged == visited);
}
