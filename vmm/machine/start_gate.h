// Where a vCPU thread waits until its vCPU is started (the guest asked for it) or the VM stops.
// Opening and closing change the gate's state under the gate's own mutex before notifying, and
// the waiter checks every wake-up condition under that mutex: a wake-up cannot fall between the
// waiter's check and its sleep.
#pragma once

#include <condition_variable>
#include <mutex>

namespace hvkvm::vmm {

class StartGate {
public:
    // Blocks until open(), close() or `stop_requested()` (evaluated under the gate's mutex, so
    // whoever makes it true must then call close() to wake a sleeping waiter). True if opened
    // and not closed.
    template <typename StopPredicate>
    bool wait(StopPredicate stop_requested) {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return opened_ || closed_ || stop_requested(); });
        return opened_ && !closed_;
    }

    void open() { set(opened_); }
    void close() { set(closed_); }  // for good: the vCPU will not run

private:
    void set(bool& flag) {
        {
            std::lock_guard lock(mutex_);
            flag = true;
        }
        changed_.notify_all();
    }

    std::mutex mutex_;
    std::condition_variable changed_;
    bool opened_ = false;
    bool closed_ = false;
};

}  // namespace hvkvm::vmm
