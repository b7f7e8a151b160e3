// In-guest spinlock benchmark (kernel cmdline bench=spinlock): threads pinned one per vCPU contend
// on one lock with short critical sections, for each lock algorithm side by side, at 1x, 2x and
// 4x as many busy vCPUs as the host has CPUs. Prints throughput and fairness per case.
#pragma once

namespace hvkvm::guest::bench {

bool run_spinlock_benchmark();

}  // namespace hvkvm::guest::bench
