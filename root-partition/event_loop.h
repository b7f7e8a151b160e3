// The root partition's one event loop: file descriptors (the link, the guest-message socket,
// channel eventfds) and what to do when each becomes readable, and timers. Single-threaded: every
// handler runs on the loop's thread, so VSP state needs no locks.
//
// Timers share one timerfd (CLOCK_MONOTONIC, the steady clock), created with the loop, before the
// root partition enters its sandbox: serving needs only timerfd_settime and read, never a new
// descriptor (sandbox.cpp's allow-list has no timerfd_create).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "kvm/unique_fd.h"

namespace hvkvm::root {

class EventLoop {
public:
    using Handler = std::function<void()>;
    using Clock = std::chrono::steady_clock;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    void watch(int fd, Handler handler);  // level-triggered readability
    void unwatch(int fd);
    // Runs handlers until stop() (from a handler).
    void run();
    void stop() { running_ = false; }

    // A one-shot timer on this loop: arm_at() (re)schedules it, disarm() cancels it; it runs its
    // handler once per arming, on the loop's thread. Destroying it cancels it.
    class Timer {
    public:
        Timer(EventLoop& loop, Handler handler);
        ~Timer();
        Timer(const Timer&) = delete;
        Timer& operator=(const Timer&) = delete;

        void arm_at(Clock::time_point deadline);
        void disarm();
        std::optional<Clock::time_point> deadline() const;

    private:
        EventLoop& loop_;
        uint64_t id_;
    };

    uint64_t timers_fired() const { return timers_fired_; }

private:
    struct TimerEntry {
        Handler handler;
        std::optional<Clock::time_point> deadline;
    };

    void on_timerfd_readable();
    // Programs the timerfd for the earliest armed deadline (or disarms it).
    void reprogram();

    vmm::UniqueFd epoll_;
    vmm::UniqueFd timerfd_;
    std::map<int, Handler> handlers_;
    std::map<uint64_t, TimerEntry> timers_;
    uint64_t next_timer_id_ = 1;
    uint64_t timers_fired_ = 0;
    bool running_ = false;
};

}  // namespace hvkvm::root
