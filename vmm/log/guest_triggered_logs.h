// Every log line a guest can trigger, each behind its own rate limit (rate_limited_log.h). One
// instance per partition, shared by the machine and its vCPU threads.
#pragma once

#include <initializer_list>

#include "log/rate_limited_log.h"

namespace hvkvm::vmm {

struct GuestTriggeredLogs {
    RateLimitedLog unreachable_start_requests{spdlog::level::warn, "vCPU start requests outside guest RAM"};
    RateLimitedLog refused_start_requests{spdlog::level::debug, "refused vCPU start requests"};
    RateLimitedLog unknown_milestones{spdlog::level::debug, "unknown boot milestones"};
    RateLimitedLog unknown_stats_window_commands{spdlog::level::debug, "unknown measurement-window commands"};
    RateLimitedLog unclaimed_ports{spdlog::level::debug, "accesses to unclaimed ports"};
    RateLimitedLog unclaimed_mmio{spdlog::level::debug, "accesses to unclaimed MMIO"};
    RateLimitedLog faulting_msrs{spdlog::level::debug, "faulting MSR accesses"};

    void report_suppressed() {
        for (RateLimitedLog* log : {&unreachable_start_requests, &refused_start_requests, &unknown_milestones, &unknown_stats_window_commands,
                                    &unclaimed_ports, &unclaimed_mmio, &faulting_msrs})
            log->report_suppressed();
    }
};

}  // namespace hvkvm::vmm
