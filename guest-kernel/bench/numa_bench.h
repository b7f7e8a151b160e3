// In-guest NUMA benchmark (kernel cmdline bench=numa): the allocation fast path's cost (to compare
// boots with one node and with several), the share of allocations served by the ideal node under
// load and under pressure, and the page migration rate. docs/benchmarks.md.
#pragma once

namespace hvkvm::guest::bench {

bool run_numa_benchmark();

}  // namespace hvkvm::guest::bench
