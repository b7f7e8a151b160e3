// hvkvm-root: the root-partition process. Started by `vmm` only: `hvkvm-root --link-fd N`, where N
// is its end of the link socket (link/link_messages.h). It dies with the VMM (PR_SET_PDEATHSIG).
#include <sys/prctl.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <string>

#include "root_partition.h"

namespace {

// Plain stderr, no colour (a terminal query would be a system call the sandbox refuses), each
// line labelled so that it stands apart from the VMM's own.
void set_up_logging() {
    auto logger = spdlog::stderr_logger_mt("root");
    logger->set_pattern("root: %l: %v");
    spdlog::set_default_logger(logger);
}

int link_fd_from(int argc, char** argv) {
    for (int i = 1; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--link-fd") == 0) return std::atoi(argv[i + 1]);
    return -1;
}

}  // namespace

int main(int argc, char** argv) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) return 1;  // the VMM is already gone
    ::close_range(4, ~0u, 0);  // hold nothing but stdio and the link (never an inherited KVM fd)
    set_up_logging();
    const int link_fd = link_fd_from(argc, argv);
    if (link_fd < 3) {
        fmt::print(stderr, "hvkvm-root: started by vmm only (usage: hvkvm-root --link-fd N)\n");
        return 2;
    }
    try {
        hvkvm::root::RootPartition root{hvkvm::root::link::LinkSocket(hvkvm::vmm::UniqueFd(link_fd))};
        return root.run();
    } catch (const std::exception& error) {
        spdlog::error("{}", error.what());
        return 1;
    }
}
