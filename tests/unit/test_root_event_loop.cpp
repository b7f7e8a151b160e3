// The root partition's event loop timers: one timerfd behind any number of one-shot timers, fired
// in deadline order, re-armable and cancellable from inside handlers.
#include <catch2/catch.hpp>
#include <memory>
#include <vector>

#include "event_loop.h"

using namespace hvkvm::root;
using namespace std::chrono_literals;

TEST_CASE("event loop timers fire once each, earliest first", "[root-loop]") {
    EventLoop loop;
    std::vector<int> order;
    EventLoop::Timer second(loop, [&] { order.push_back(2); });
    EventLoop::Timer first(loop, [&] { order.push_back(1); });
    EventLoop::Timer stop(loop, [&] { loop.stop(); });
    const auto now = EventLoop::Clock::now();
    second.arm_at(now + 20ms);
    first.arm_at(now + 5ms);
    stop.arm_at(now + 60ms);
    loop.run();
    CHECK(order == std::vector<int>{1, 2});
    CHECK_FALSE(first.deadline().has_value());
    CHECK(loop.timers_fired() == 3);
}

TEST_CASE("event loop timers: disarmed or destroyed timers never fire; a handler may re-arm its own timer", "[root-loop]") {
    EventLoop loop;
    int cancelled = 0, destroyed = 0, repeats = 0;
    EventLoop::Timer cancel(loop, [&] { ++cancelled; });
    auto doomed = std::make_unique<EventLoop::Timer>(loop, [&] { ++destroyed; });
    std::unique_ptr<EventLoop::Timer> repeat;
    repeat = std::make_unique<EventLoop::Timer>(loop, [&] {
        if (++repeats < 3) repeat->arm_at(EventLoop::Clock::now() + 2ms);
    });
    EventLoop::Timer stop(loop, [&] { loop.stop(); });
    const auto now = EventLoop::Clock::now();
    cancel.arm_at(now + 5ms);
    doomed->arm_at(now + 5ms);
    repeat->arm_at(now + 1ms);
    stop.arm_at(now + 80ms);
    cancel.disarm();
    doomed.reset();
    loop.run();
    CHECK(cancelled == 0);
    CHECK(destroyed == 0);
    CHECK(repeats == 3);
}

TEST_CASE("event loop timers: a deadline already past fires at once", "[root-loop]") {
    EventLoop loop;
    bool fired = false;
    EventLoop::Timer past(loop, [&] {
        fired = true;
        loop.stop();
    });
    past.arm_at(EventLoop::Clock::now() - 1s);
    loop.run();
    CHECK(fired);
}
