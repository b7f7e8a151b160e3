// The root partition's sandbox, entered once it holds every file descriptor it will ever need
// (guest RAM, the link, eventfds arrive later over the link but need no new system calls):
//   - no privileges: as uid 0 it becomes nobody; every capability (and the bounding set, where it
//     may) is dropped with libcap-ng; PR_SET_NO_NEW_PRIVS forbids regaining any;
//   - a seccomp allow-list (libseccomp): the system calls an event loop serving guest rings
//     needs, nothing that opens files, creates sockets, executes or traces. Anything else fails
//     with EPERM. /dev/kvm in particular can never be opened. Disk I/O: io_uring_enter on the
//     ring set up before (storage/io/io_engine.h); io_uring_setup/register are refused.
#pragma once

#include <cstdint>

namespace hvkvm::root {

struct SandboxState {
    uint32_t seccomp_mode = 0;  // prctl(PR_GET_SECCOMP): 2 = filter
    uint64_t capabilities = 0;  // effective set
    bool no_new_privileges = false;
};

// Throws vmm::HostError naming the step that failed.
void enter_sandbox();
// What the process can observe about itself (allowed inside the sandbox).
SandboxState sandbox_state();

}  // namespace hvkvm::root
