#include "machine/run_control.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

RunControl::RunControl() : event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!event_fd_.valid()) throw_errno("eventfd for VM stop");
}

bool RunControl::request_stop(RunOutcome outcome) {
    {
        std::lock_guard lock(mutex_);
        if (outcome_) return false;
        outcome_ = std::move(outcome);
        stopping_.store(true, std::memory_order_release);
    }
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t ignored = ::write(event_fd_.get(), &one, sizeof one);
    return true;
}

RunOutcome RunControl::outcome() const {
    std::lock_guard lock(mutex_);
    return outcome_.value_or(RunOutcome::with(ExitStatus::kHostError, "VM stopped without an outcome"));
}

}  // namespace hvkvm::vmm
