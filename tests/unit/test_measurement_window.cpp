// The guest's measurement window (kStatsWindowPort): the counters it reports are the workload's.
#include <catch2/catch.hpp>

#include "stats/measurement_window.h"

using hvkvm::vmm::counter_difference;
using hvkvm::vmm::KvmStat;
using hvkvm::vmm::MeasurementWindow;

namespace {

uint64_t value_of(const std::vector<KvmStat>& stats, const std::string& name) {
    for (const auto& stat : stats)
        if (stat.name == name) return stat.value;
    FAIL("no counter " << name);
    return 0;
}

}  // namespace

TEST_CASE("measurement window: counters are differences by name, missing ones count from 0, none wraps", "[stats]") {
    const std::vector<KvmStat> before{{"exits", 100}, {"io_exits", 40}, {"halt_exits", 9}};
    const std::vector<KvmStat> after{{"io_exits", 45}, {"exits", 130}, {"irq_injections", 7}, {"halt_exits", 8}};
    const auto difference = counter_difference(after, before);
    REQUIRE(difference.size() == 4);
    CHECK(value_of(difference, "exits") == 30);
    CHECK(value_of(difference, "io_exits") == 5);
    CHECK(value_of(difference, "irq_injections") == 7);
    CHECK(value_of(difference, "halt_exits") == 0);
}

TEST_CASE("measurement window: the last closed window is reported, and a close without an open changes nothing", "[stats]") {
    MeasurementWindow window;
    const auto t0 = MeasurementWindow::Clock::time_point{};
    using std::chrono::milliseconds;
    CHECK_FALSE(window.close({{"exits", 5}}, t0));
    CHECK_FALSE(window.last());

    window.open({{"exits", 10}}, t0);
    CHECK_FALSE(window.last());  // open, not closed yet
    REQUIRE(window.close({{"exits", 25}}, t0 + milliseconds(500)));
    auto first = window.last();
    REQUIRE(first);
    CHECK(first->milliseconds == Approx(500.0));
    CHECK(value_of(first->counters, "exits") == 15);
    CHECK(first->windows == 1);

    CHECK_FALSE(window.close({{"exits", 99}}, t0 + milliseconds(600)));  // already closed
    CHECK(window.last()->windows == 1);

    window.open({{"exits", 30}}, t0 + milliseconds(700));
    window.open({{"exits", 40}}, t0 + milliseconds(800));  // a second open restarts the window
    REQUIRE(window.close({{"exits", 41}}, t0 + milliseconds(1000)));
    CHECK(window.last()->milliseconds == Approx(200.0));
    CHECK(value_of(window.last()->counters, "exits") == 1);
    CHECK(window.last()->windows == 2);
}
