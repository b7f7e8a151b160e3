// Per-VM stop coordination. The first stop request (guest exit, crash, host error, signal) wins
// and fixes the outcome; later ones are ignored. The main thread waits on stop_event_fd().
#pragma once

#include <atomic>
#include <mutex>
#include <optional>

#include "kvm/unique_fd.h"
#include "machine/run_outcome.h"

namespace hvkvm::vmm {

class RunControl {
public:
    RunControl();

    // Returns true if this call decided the outcome.
    bool request_stop(RunOutcome outcome);
    bool stopping() const { return stopping_.load(std::memory_order_acquire); }
    RunOutcome outcome() const;
    int stop_event_fd() const { return event_fd_.get(); }

private:
    std::atomic<bool> stopping_{false};
    mutable std::mutex mutex_;
    std::optional<RunOutcome> outcome_;
    UniqueFd event_fd_;
};

}  // namespace hvkvm::vmm
