// SIGINT and SIGTERM stop the VM cleanly: they are blocked in every thread (the mask is inherited
// by the vCPU threads created later) and read from a signalfd by the main thread.
#pragma once

#include <signal.h>

#include <optional>

#include "kvm/unique_fd.h"

namespace hvkvm::vmm {

class StopSignals {
public:
    StopSignals();
    ~StopSignals();
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    int fd() const { return fd_.get(); }
    std::optional<int> read_signal() const;  // the pending stop signal, if any

private:
    sigset_t previous_mask_{};
    UniqueFd fd_;
};

}  // namespace hvkvm::vmm
