#include "machine/stop_signals.h"

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "kvm/kvm_error.h"

namespace hvkvm::vmm {

StopSignals::StopSignals() {
    sigset_t stop_set;
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGINT);
    sigaddset(&stop_set, SIGTERM);
    if (int error = ::pthread_sigmask(SIG_BLOCK, &stop_set, &previous_mask_)) throw HostError(error, "pthread_sigmask");
    fd_.reset(::signalfd(-1, &stop_set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!fd_.valid()) throw_errno("signalfd for SIGINT/SIGTERM");
}

StopSignals::~StopSignals() {
    // A signal that arrived after the run ended has nothing left to stop: consume it rather than
    // let it kill the process when the mask is restored.
    while (read_signal()) {
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

std::optional<int> StopSignals::read_signal() const {
    signalfd_siginfo info{};
    if (::read(fd_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return std::nullopt;
    return static_cast<int>(info.ssi_signo);
}

}  // namespace hvkvm::vmm
