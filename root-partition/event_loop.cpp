#include "event_loop.h"

#include <sys/epoll.h>

#include <cerrno>
#include <fmt/format.h>

#include "kvm/kvm_error.h"

namespace hvkvm::root {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {
    if (!epoll_.valid()) vmm::throw_errno("epoll_create1 for the root partition");
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

}  // namespace hvkvm::root
