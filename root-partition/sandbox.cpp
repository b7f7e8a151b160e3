#include "sandbox.h"

#include <cap-ng.h>
#include <seccomp.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include <cerrno>
#include <fmt/format.h>
#include <memory>

#include "kvm/kvm_error.h"

namespace hvkvm::root {
namespace {

constexpr uid_t kNobody = 65534;

void drop_user() {
    if (::getuid() != 0 && ::geteuid() != 0) return;
    if (::setgroups(0, nullptr) < 0) vmm::throw_errno("setgroups for the root partition");
    if (::setresgid(kNobody, kNobody, kNobody) < 0) vmm::throw_errno("setresgid(nobody)");
    if (::setresuid(kNobody, kNobody, kNobody) < 0) vmm::throw_errno("setresuid(nobody)");
}

void drop_capabilities() {
    // The bounding set can only be emptied while CAP_SETPCAP is held; without it there is nothing
    // in the effective or permitted sets to drop either.
    const bool can_drop_bounds = capng_have_capability(CAPNG_EFFECTIVE, CAP_SETPCAP);
    capng_clear(CAPNG_SELECT_BOTH);
    if (capng_apply(can_drop_bounds ? CAPNG_SELECT_BOTH : CAPNG_SELECT_CAPS) < 0)
        throw vmm::HostError(EPERM, "capng_apply: cannot drop the root partition's capabilities");
}

// Every system call the root partition makes while serving: I/O on descriptors it holds, its
// event loop and its timers (the loop's one timerfd exists before the sandbox: no timerfd_create),
// memory management, time, and leaving. (x86-64 names.) Disk I/O goes through an io_uring set up
// (and locked down to reads, writes, fdatasync and hole punching on the disks) before the sandbox:
// io_uring_enter is all it needs; io_uring_setup and io_uring_register are refused, so no new
// ring, and no change to the existing one, is possible.
constexpr int kAllowed[] = {
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(pwrite64),
    SCMP_SYS(preadv), SCMP_SYS(pwritev), SCMP_SYS(recvfrom), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(close), SCMP_SYS(fstat),
    SCMP_SYS(fcntl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_create1),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(timerfd_settime), SCMP_SYS(mmap),
    SCMP_SYS(munmap), SCMP_SYS(mprotect), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk), SCMP_SYS(futex),
    SCMP_SYS(clock_gettime), SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(gettimeofday),
    SCMP_SYS(sched_yield), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getrandom), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(capget), SCMP_SYS(io_uring_enter), SCMP_SYS(exit), SCMP_SYS(exit_group)};

void install_seccomp_filter() {
    std::unique_ptr<void, void (*)(scmp_filter_ctx)> filter(seccomp_init(SCMP_ACT_ERRNO(EPERM)), seccomp_release);
    if (!filter) throw vmm::HostError(ENOMEM, "seccomp_init");
    for (int syscall : kAllowed)
        if (int error = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, syscall, 0))
            throw vmm::HostError(-error, fmt::format("seccomp_rule_add for system call {}", syscall));
    // prctl only to read the sandbox's own state; tgkill only at itself (abort()).
    if (int error = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_SECCOMP)))
        throw vmm::HostError(-error, "seccomp_rule_add for prctl(PR_GET_SECCOMP)");
    if (int error = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, SCMP_A0(SCMP_CMP_EQ, PR_GET_NO_NEW_PRIVS)))
        throw vmm::HostError(-error, "seccomp_rule_add for prctl(PR_GET_NO_NEW_PRIVS)");
    if (int error = seccomp_rule_add(filter.get(), SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                                     SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(::getpid()))))
        throw vmm::HostError(-error, "seccomp_rule_add for tgkill");
    if (int error = seccomp_load(filter.get())) throw vmm::HostError(-error, "seccomp_load");
}

}  // namespace

void enter_sandbox() {
    drop_user();
    drop_capabilities();
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) vmm::throw_errno("prctl(PR_SET_NO_NEW_PRIVS)");
    install_seccomp_filter();
}

SandboxState sandbox_state() {
    SandboxState state;
    const int mode = ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    state.seccomp_mode = mode < 0 ? 0 : static_cast<uint32_t>(mode);
    state.no_new_privileges = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capget, &header, data) == 0)
        state.capabilities = data[0].effective | (uint64_t{data[1].effective} << 32);
    return state;
}

}  // namespace hvkvm::root
