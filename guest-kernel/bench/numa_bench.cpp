#include "bench/numa_bench.h"

namespace hvkvm::guest::bench {

bool run_numa_benchmark() { return true; }

}  // namespace hvkvm::guest::bench
