#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace hvkvm::vmm {

// A failed system call on the host side (KVM ioctl, mmap, memfd, ...). Maps to exit status 1.
class HostError : public std::system_error {
public:
    HostError(int error, const std::string& what)
        : std::system_error(error, std::generic_category(), what) {}
};

[[noreturn]] inline void throw_errno(const std::string& what) { throw HostError(errno, what); }

}  // namespace hvkvm::vmm
