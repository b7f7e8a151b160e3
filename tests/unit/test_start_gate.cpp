// The vCPU start gate must not lose a stop: a close() that lands while the waiter is between
// checking its conditions and going to sleep still wakes it.
#include <catch2/catch.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "machine/start_gate.h"

using namespace hvkvm::vmm;
using namespace std::chrono_literals;

TEST_CASE("open and close wake a waiter; close wins over open", "[start-gate]") {
    StartGate opened;
    auto waiter = std::async(std::launch::async, [&] { return opened.wait([] { return false; }); });
    opened.open();
    REQUIRE(waiter.wait_for(5s) == std::future_status::ready);
    CHECK(waiter.get());

    StartGate closed;
    closed.open();
    closed.close();
    CHECK_FALSE(closed.wait([] { return false; }));
    StartGate stopping;
    CHECK_FALSE(stopping.wait([] { return true; }));  // the VM already stops: do not wait
}

TEST_CASE("a close() racing with the waiter's last check is not lost", "[start-gate]") {
    // The waiter's stop predicate runs while the waiter checks its conditions. Its first call
    // fires close() from another thread and gives that call time to complete before returning
    // "not stopping". A close() that notified without the gate's mutex would complete right
    // away, before the waiter sleeps, and the waiter would then sleep forever.
    StartGate gate;
    std::future<void> closer;
    bool first_check = true;
    auto stop_requested = [&] {
        if (first_check) {
            first_check = false;
            closer = std::async(std::launch::async, [&] { gate.close(); });
            closer.wait_for(100ms);
        }
        return false;
    };
    auto waiter = std::async(std::launch::async, [&] { return gate.wait(stop_requested); });
    REQUIRE(waiter.wait_for(5s) == std::future_status::ready);  // a lost wake-up hangs here
    CHECK_FALSE(waiter.get());
    closer.wait();
}
