#include "event_loop.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <fmt/format.h>
#include <vector>

#include "kvm/kvm_error.h"

namespace hvkvm::root {

EventLoop::EventLoop()
    : epoll_(::epoll_create1(EPOLL_CLOEXEC)), timerfd_(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) {
    if (!epoll_.valid()) vmm::throw_errno("epoll_create1 for the root partition");
    if (!timerfd_.valid()) vmm::throw_errno("timerfd_create for the root partition's timers");
    watch(timerfd_.get(), [this] { on_timerfd_readable(); });
}

void EventLoop::watch(int fd, Handler handler) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) < 0) vmm::throw_errno(fmt::format("epoll_ctl ADD fd {}", fd));
    handlers_[fd] = std::move(handler);
}

void EventLoop::unwatch(int fd) {
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    handlers_.erase(fd);
}

void EventLoop::run() {
    running_ = true;
    while (running_) {
        epoll_event events[32];
        const int ready = ::epoll_wait(epoll_.get(), events, 32, -1);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) vmm::throw_errno("epoll_wait in the root partition");
        for (int i = 0; i < ready && running_; ++i) {
            // A handler may unwatch another descriptor of this batch: look it up each time.
            auto handler = handlers_.find(events[i].data.fd);
            if (handler != handlers_.end()) handler->second();
        }
    }
}

void EventLoop::on_timerfd_readable() {
    uint64_t expirations;
    [[maybe_unused]] ssize_t got = ::read(timerfd_.get(), &expirations, sizeof expirations);
    // Collect first: a handler may arm, disarm or destroy timers (its own included).
    const auto now = Clock::now();
    std::vector<uint64_t> due;
    for (const auto& [id, timer] : timers_)
        if (timer.deadline && *timer.deadline <= now) due.push_back(id);
    for (uint64_t id : due) {
        auto timer = timers_.find(id);
        if (timer == timers_.end() || !timer->second.deadline || *timer->second.deadline > now) continue;
        timer->second.deadline.reset();
        ++timers_fired_;
        Handler handler = timer->second.handler;  // the timer may be destroyed while it runs
        handler();
    }
    reprogram();
}

void EventLoop::reprogram() {
    std::optional<Clock::time_point> earliest;
    for (const auto& [id, timer] : timers_)
        if (timer.deadline && (!earliest || *timer.deadline < *earliest)) earliest = timer.deadline;
    itimerspec spec{};
    if (earliest) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest->time_since_epoch()).count();
        // Absolute time on CLOCK_MONOTONIC (steady_clock's clock); 0 would disarm, so never below 1 ns.
        spec.it_value.tv_sec = ns / 1'000'000'000;
        spec.it_value.tv_nsec = ns % 1'000'000'000;
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
    }
    if (::timerfd_settime(timerfd_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) < 0) vmm::throw_errno("timerfd_settime");
}

EventLoop::Timer::Timer(EventLoop& loop, Handler handler) : loop_(loop), id_(loop.next_timer_id_++) {
    loop_.timers_[id_] = TimerEntry{std::move(handler), std::nullopt};
}

// The timerfd may stay set for this timer's deadline: it then fires with nothing due and is
// reprogrammed.
EventLoop::Timer::~Timer() { loop_.timers_.erase(id_); }

void EventLoop::Timer::arm_at(Clock::time_point deadline) {
    loop_.timers_[id_].deadline = deadline;
    loop_.reprogram();
}

void EventLoop::Timer::disarm() {
    loop_.timers_[id_].deadline.reset();
    loop_.reprogram();
}

std::optional<EventLoop::Clock::time_point> EventLoop::Timer::deadline() const {
    auto timer = loop_.timers_.find(id_);
    return timer == loop_.timers_.end() ? std::nullopt : timer->second.deadline;
}

}  // namespace hvkvm::root
