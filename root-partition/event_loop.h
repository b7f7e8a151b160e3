// The root partition's one event loop: file descriptors (the link, the guest-message socket,
// channel eventfds) and what to do when each becomes readable. Single-threaded: every handler
// runs on the loop's thread, so VSP state needs no locks.
#pragma once

#include <functional>
#include <map>

#include "kvm/unique_fd.h"

namespace hvkvm::root {

class EventLoop {
public:
    using Handler = std::function<void()>;

    EventLoop();
    void watch(int fd, Handler handler);  // level-triggered readability
    void unwatch(int fd);
    // Runs handlers until stop() (from a handler).
    void run();
    void stop() { running_ = false; }

private:
    vmm::UniqueFd epoll_;
    std::map<int, Handler> handlers_;
    bool running_ = false;
};

}  // namespace hvkvm::root
