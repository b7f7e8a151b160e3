// How a run ends, and the process exit status that tells a script about it.
#pragma once

#include <string>

namespace hvkvm::vmm {

// Process exit statuses of `vmm run` (documented in README and docs/config.md).
enum class ExitStatus : int {
    kGuestSuccess = 0,   // the guest reported success
    kHostError = 1,      // the VMM or the host failed (KVM unavailable, ioctl failure, ...)
    kInvalidInput = 2,   // invalid config, arguments or kernel image; nothing was started
    kGuestCrash = 3,     // unhandled exception, panic, triple fault, KVM internal error
    kGuestFailure = 4,   // the guest ran to completion but reported failure (e.g. tests failed)
    kSignalBase = 128,   // stopped by signal N: 128 + N, as shells report it
};

struct RunOutcome {
    int status;
    std::string summary;  // one line for the user, e.g. "guest crash: triple fault at RIP ..."

    static RunOutcome with(ExitStatus status, std::string summary) {
        return {static_cast<int>(status), std::move(summary)};
    }
};

}  // namespace hvkvm::vmm
