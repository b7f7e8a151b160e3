// In-guest block I/O workload (kernel cmdline bench=io): one run of one configuration, ending in
// a machine-readable `io-result` line. The run is the VMM's measurement window
// (abi::kStatsWindowPort), so the VMM's report has KVM's exits and interrupts of the workload
// alone; tests/bench/storage.sh boots it once per configuration and divides them by the I/Os.
// Parameters (all optional):
//
//   io.device=NAME        block device (default ata0): ata0/ata1 (IDE), sd0, sd1... (VMBus LUNs),
//                         or by bus, `ide` (ata0) or `vmbus` (the first VMBus LUN); `ram` makes a
//                         64 MiB RAM disk (the block layer's own cost)
//   io.pattern=seq|rand   sequential (each thread its own stripe) or random offsets (default seq)
//   io.op=read|write      (default read)
//   io.bs=SIZE            bytes per I/O, a multiple of 512 up to 1m: 4k, 64k, 1m, 512... (default 4k)
//   io.qd=N               I/Os in flight per thread, 1..64 (default 1)
//   io.threads=N          submitting threads, pinned one per vCPU in turn (default 1)
//   io.time_ms=N          run time (default 2000), or
//   io.count=N            stop after N I/Os in all
//   io.region_mib=N       the part of the device used, from sector 0 (default: all of it, at most 1 GiB)
//
// Latency is measured per I/O from submission to the waiting thread's return from the completion
// port (TSC clock); p50 and p99 come from a log-linear histogram (3 % resolution).
#pragma once

#include "kernel/cmdline.h"

namespace hvkvm::guest::bench {

bool run_io_benchmark(const Cmdline& cmdline);

}  // namespace hvkvm::guest::bench
